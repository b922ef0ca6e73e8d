import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { WorkloadApiAddress, workloadApiErrorFromStatus } from "spiffe-node";
import { adviseOnMissingSvid } from "./agent-advice.js";

// gRPC status codes (service-kit does not depend on grpc-js itself).
const status = { PERMISSION_DENIED: 7, INTERNAL: 13, UNAVAILABLE: 14 } as const;
type Code = (typeof status)[keyof typeof status];

const ADDRESS = WorkloadApiAddress.parse("unix:///no/such/folder/agent.sock");

function adviceFor(code: Code | undefined, details = "") {
  const lastError =
    code === undefined ? undefined : workloadApiErrorFromStatus({ code, details }, ADDRESS);
  return adviseOnMissingSvid({ lastError, address: ADDRESS });
}

describe("adviseOnMissingSvid", () => {
  test("no agent: one plain sentence naming the path, and step 1", () => {
    const advice = adviceFor(
      status.UNAVAILABLE,
      "No connection established. Last error: Error: connect ENOENT /no/such/folder/agent.sock. Resolution note: ",
    );
    assert.equal(advice.kind, "no-socket");
    assert.equal(
      advice.reason,
      "There is no SPIRE Agent socket at /no/such/folder/agent.sock: the agent is not running.",
    );
    assert.equal(advice.fix, "Start the agents: run ./1-start-spire-agents.sh.");
    assert.match(
      advice.detail ?? "",
      /\[UNAVAILABLE: No connection established/,
      "detail for logs",
    );
  });

  test("no entry yet: step 3", () => {
    const advice = adviceFor(status.PERMISSION_DENIED, "no identity issued");
    assert.equal(advice.kind, "no-entry");
    assert.match(advice.reason, /no registration entry matches this workload yet\.$/);
    assert.match(advice.fix ?? "", /run \.\/3-create-registration-entries\.sh/);
  });

  test("no answer yet: nothing to fix, nothing to show from the agent", () => {
    const advice = adviceFor(undefined);
    assert.equal(advice.kind, "no-answer-yet");
    assert.equal(advice.fix, undefined);
    assert.equal(advice.detail, undefined);
  });

  test("the reason never carries the raw gRPC detail", () => {
    for (const code of [status.UNAVAILABLE, status.PERMISSION_DENIED, status.INTERNAL]) {
      const advice = adviceFor(code, "raw detail text");
      assert.doesNotMatch(advice.reason, /raw detail text|\[|UNAVAILABLE|PERMISSION_DENIED/);
      assert.ok(advice.fix, `a fix for code ${code}`);
    }
  });
});
