{
  "targets": [
    {
      "target_name": "pty_reader",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/pty_reader.c"], "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"] }],
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
