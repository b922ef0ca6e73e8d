import type { Server } from "node:net";

/** A server could not listen; the message says why and what to do. */
export class ListenError extends Error {
  override name = "ListenError";
}

/**
 * Starts listening and resolves with the bound port, or rejects with a ListenError that
 * names the flag to change (e.g. "port 8090 is in use: stop the other process or pass --port").
 */
export function listen(server: Server, port: number, host: string, flag: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      reject(new ListenError(explainListenError(error, port, host, flag), { cause: error }));
    };
    const onListening = () => {
      server.off("error", onError);
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
}

function explainListenError(
  error: NodeJS.ErrnoException,
  port: number,
  host: string,
  flag: string,
): string {
  switch (error.code) {
    case "EADDRINUSE":
      return `port ${port} is in use: stop the other process or pass ${flag}`;
    case "EACCES":
      return `not allowed to listen on port ${port} (ports below 1024 need privileges): pass ${flag}`;
    case "EADDRNOTAVAIL":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `cannot listen on host ${JSON.stringify(host)}: it is not an address of this machine (${error.code}); pass --host`;
    default:
      return `cannot listen on ${host}:${port}: ${error.message}`;
  }
}
