/** Where \`switchboard serve\` listens unless told otherwise (apart, so the CLI reads them without loading the gateway). */
export const DEFAULT_HOST = "127.0.0.1";
export const DEFAULT_PORT = 7317;
