// Run by shutdown.test.ts in a child process: a service whose closing either settles at
// once ("settles") or never does ("hangs"), stopped by a signal or by a failed start-up.
import { createLogger } from "./logger.js";
import { handleShutdown } from "./shutdown.js";

const [mode = "settles", graceMs = "5000", how = "signal"] = process.argv.slice(2);
const log = createLogger("shutdown-fixture", "info");
const closeAll = () => (mode === "hangs" ? new Promise<never>(() => {}) : Promise.resolve());
const shutdown = handleShutdown(log, closeAll, Number(graceMs));
// Stands for the service's servers: keeps the process alive until it is stopped.
setInterval(() => {}, 60_000);
if (how === "startup-failure") shutdown.startupFailed(new Error("cannot start"));
else log.info("ready");
