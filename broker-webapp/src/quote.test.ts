import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_QUOTES, parseQuotes, QuoteShapeError } from "./quote.js";

const good = {
  Symbol: "AAAA",
  Price: 61.2,
  Open: 60,
  Low: 59.5,
  High: 62,
  Close: 60.4,
  Time: "2026-01-02T03:04:05.123456789Z",
};

describe("parseQuotes", () => {
  it("accepts the original's shape, with and without a time", () => {
    const quotes = parseQuotes([good, { ...good, Symbol: "BBBB", Time: null }]);
    assert.equal(quotes.length, 2);
    assert.equal(quotes[0]?.Time?.toISOString(), "2026-01-02T03:04:05.123Z");
    assert.equal(quotes[1]?.Time, null);
  });

  it("accepts a time with an offset, as Go writes local times", () => {
    const [quote] = parseQuotes([{ ...good, Time: "2026-01-02T04:04:05+01:00" }]);
    assert.equal(quote?.Time?.toISOString(), "2026-01-02T03:04:05.000Z");
  });

  const bad: [string, unknown, RegExp][] = [
    ["not an array", { quotes: [] }, /JSON array/],
    ["a non-object item", [1], /quote 0 is not an object/],
    ["a missing symbol", [{ ...good, Symbol: undefined }], /Symbol/],
    ["a numeric symbol", [{ ...good, Symbol: 7 }], /Symbol/],
    ["an overlong symbol", [{ ...good, Symbol: "X".repeat(33) }], /Symbol/],
    ["a string price", [{ ...good, Price: "61.2" }], /Price must be a finite number/],
    ["a missing Close", [{ ...good, Close: undefined }], /Close/],
    ["a free-text time", [{ ...good, Time: "yesterday" }], /Time must be an RFC 3339/],
    ["a numeric time", [{ ...good, Time: 1700000000 }], /Time/],
    ["too many quotes", Array(MAX_QUOTES + 1).fill(good), /at most/],
  ];
  for (const [name, input, message] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => parseQuotes(input),
        (error: unknown) => error instanceof QuoteShapeError && message.test(error.message),
      );
    });
  }
});
