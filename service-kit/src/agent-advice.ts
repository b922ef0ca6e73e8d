import {
  type AgentProblemKind,
  describeAgentProblem,
  diagnoseAgentProblem,
  type WorkloadApiAddress,
} from "spiffe-node";

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

/** The tutorial step that fixes each problem; the problem itself is worded by the library. */
const FIXES: Record<AgentProblemKind, string | undefined> = {
  "no-socket": `Start the agents: ${START_AGENTS}.`,
  "not-a-socket": `Check the --socket option, then ${START_AGENTS}.`,
  "socket-permission-denied": `Run ./1-start-spire-agents.sh again: it opens the socket folder to the workloads' users.`,
  "connection-refused": `Start it again: ${START_AGENTS}.`,
  unreachable: `Start the agents: ${START_AGENTS}.`,
  "no-entry": `Create the entries: ${CREATE_ENTRIES} (the agent picks them up within about a second).`,
  "no-answer-yet": undefined,
  other: "The service log has the agent's full answer.",
};

/** The library's words as a sentence of their own. */
function sentence(words: string): string {
  return `${words.charAt(0).toUpperCase()}${words.slice(1)}.`;
}

/** Why there is no SVID (from the source's last Workload API error), in plain words. */
export function adviseOnMissingSvid(source: {
  readonly lastError: Error | undefined;
  readonly address: WorkloadApiAddress;
}): AgentAdvice {
  const problem = diagnoseAgentProblem(source.lastError, source.address);
  return {
    kind: problem.kind,
    reason: sentence(describeAgentProblem(problem.kind, problem.address)),
    fix: FIXES[problem.kind],
    detail: problem.error?.message,
  };
}
