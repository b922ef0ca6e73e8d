import { createRequire } from "node:module";
import { type Logger, pino } from "pino";

/** JSON logs; human-readable ones when stdout is a terminal and pino-pretty is installed. */
export function createLogger(name: string, level: string): Logger {
  if (process.stdout.isTTY && prettyPrinterInstalled()) {
    return pino({
      name,
      level,
      transport: {
        target: "pino-pretty",
        options: { translateTime: "SYS:HH:MM:ss", ignore: "pid,hostname" },
      },
    });
  }
  return pino({ name, level });
}

function prettyPrinterInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve("pino-pretty");
    return true;
  } catch {
    return false;
  }
}
