// The SPIRE release under test, read from .env: the one place the project names it.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ENV_FILE = fileURLToPath(new URL("../../.env", import.meta.url));

function readSpireVersion(): string {
  const match = /^SPIRE_VERSION=(\d+\.\d+\.\d+)$/m.exec(readFileSync(ENV_FILE, "utf8"));
  if (!match) throw new Error(`${ENV_FILE} has no SPIRE_VERSION=X.Y.Z line`);
  return match[1] as string;
}

export const SPIRE_VERSION = readSpireVersion();
export const SPIRE_SERVER_IMAGE = `ghcr.io/spiffe/spire-server:${SPIRE_VERSION}`;
export const SPIRE_AGENT_IMAGE = `ghcr.io/spiffe/spire-agent:${SPIRE_VERSION}`;
