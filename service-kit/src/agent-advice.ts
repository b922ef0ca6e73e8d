import { type AgentProblem, type AgentProblemKind, diagnoseAgentProblem } from "spiffe-node";

/** A workload's missing SVID in plain words, for the web page and the logs. */
export interface AgentAdvice {
  kind: AgentProblemKind;
  /** One short sentence: what is wrong. */
  reason: string;
  /** The tutorial step (or other action) that fixes it; undefined when waiting is enough. */
  fix: string | undefined;
  /** The agent's full answer (gRPC status and detail), for the log; undefined before any. */
  detail: string | undefined;
}

const START_AGENTS = "run ./1-start-spire-agents.sh";
const CREATE_ENTRIES = "run ./3-create-registration-entries.sh";

function words(problem: AgentProblem): { reason: string; fix: string | undefined } {
  const path = problem.socketPath ?? problem.address;
  switch (problem.kind) {
    case "no-socket":
      return {
        reason: `There is no SPIRE Agent socket at ${path}: the agent is not running.`,
        fix: `Start the agents: ${START_AGENTS}.`,
      };
    case "not-a-socket":
      return {
        reason: `${path} is not a socket, so no SPIRE Agent can answer there.`,
        fix: `Check the --socket option, then ${START_AGENTS}.`,
      };
    case "socket-permission-denied":
      return {
        reason: `This service's user may not open the SPIRE Agent socket at ${path} (permission denied).`,
        fix: `${capitalized(START_AGENTS)} again: it opens the socket folder to the workloads' users.`,
      };
    case "connection-refused":
      return {
        reason: `The socket ${path} is there, but no SPIRE Agent answers on it (connection refused): the agent has stopped.`,
        fix: `Start it again: ${START_AGENTS}.`,
      };
    case "unreachable":
      return {
        reason: `No SPIRE Agent answers at ${problem.address}.`,
        fix: `Start the agents: ${START_AGENTS}.`,
      };
    case "no-entry":
      return {
        reason: `The SPIRE Agent at ${problem.address} answered, but no registration entry matches this workload yet.`,
        fix: `Create the entries: ${CREATE_ENTRIES} (the agent picks them up within about a second).`,
      };
    case "no-answer-yet":
      return {
        reason: `No answer from the SPIRE Agent at ${problem.address} yet.`,
        fix: undefined,
      };
    case "other":
      return {
        reason: `The SPIRE Agent at ${problem.address} answered with an error.`,
        fix: "The service log has the agent's full answer.",
      };
  }
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Why there is no SVID (from the source's last Workload API error), in plain words. */
export function adviseOnMissingSvid(source: {
  readonly lastError: Error | undefined;
  readonly address: string;
}): AgentAdvice {
  const problem = diagnoseAgentProblem(source.lastError, source.address);
  return { kind: problem.kind, ...words(problem), detail: problem.error?.message };
}
