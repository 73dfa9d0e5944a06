{
  "targets": [
    {
      "target_name": "pty_reader",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/pty_reader.c"], "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"] }],
        ["OS!='linux'", { "type": "none" }]
      ]
    },
    {
      "target_name": "json_text",
      "sources": ["native/json_text.c"],
      "cflags": ["-O3", "-Wall", "-Wextra"]
    },
    {
      "target_name": "holder",
      "type": "executable",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/holder.c"], "cflags": ["-O2", "-Wall", "-Wextra"] }],
        ["OS!='linux'", { "type": "none" }]
      ]
    },
    {
      "target_name": "fd_hangup",
      "sources": ["native/fd_hangup.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    },
    {
      "target_name": "peer_cred",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/peer_cred.c"], "cflags": ["-O2", "-Wall", "-Wextra"] }],
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
