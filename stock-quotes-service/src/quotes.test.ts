import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mathRandom, QuoteBook, type RandomSource, SYMBOLS } from "./quotes.js";

/** Replays scripted uniforms and normals; fails loudly if the model asks for more. */
function scripted(uniforms: number[], normals: number[]): RandomSource {
  return {
    uniform: () => {
      const value = uniforms.shift();
      assert.notEqual(value, undefined, "the model drew more uniforms than scripted");
      return value as number;
    },
    normal: () => {
      const value = normals.shift();
      assert.notEqual(value, undefined, "the model drew more normals than scripted");
      return value as number;
    },
  };
}

const NO_CHANGE = 0.9;
const CHANGE = 0.1;

describe("QuoteBook", () => {
  it("has the original's eleven symbols, all without a time at first", () => {
    assert.deepEqual(SYMBOLS, [
      "AAAA",
      "BBBB",
      "CCCC",
      "DDDD",
      "EEEE",
      "FFFF",
      "GGGG",
      "HHHH",
      "IIII",
      "JJJJ",
      "KKKK",
    ]);
    const quotes = new QuoteBook(scripted([], [])).snapshot();
    assert.equal(quotes.length, 11);
    for (const quote of quotes) {
      assert.deepEqual(Object.keys(quote), [
        "Symbol",
        "Price",
        "Open",
        "Low",
        "High",
        "Close",
        "Time",
      ]);
      assert.equal(quote.Time, null);
    }
  });

  it("opens a quote on its first change and walks it afterwards", () => {
    const times = [new Date("2026-01-02T03:04:05.000Z"), new Date("2026-01-02T03:04:06.000Z")];
    let tick = 0;
    const now = () => times[Math.min(tick++, times.length - 1)] as Date;
    // Request 1: AAAA changes (draws: change?, normal delta, uniform open, normal close).
    const random = scripted(
      [CHANGE, 0.5, ...Array(10).fill(NO_CHANGE), CHANGE, ...Array(10).fill(NO_CHANGE)],
      [2, -1, -4],
    );
    const book = new QuoteBook(random, now);

    const first = book.next();
    const a1 = first[0];
    // Open = delta + 10 + 100*U = 2*1.5 + 10 + 50; Close = Open - N*1.5 = 63 + 1.5
    assert.deepEqual(a1, {
      Symbol: "AAAA",
      Price: 63,
      Open: 63,
      Low: 63,
      High: 63,
      Close: 64.5,
      Time: "2026-01-02T03:04:05.000Z",
    });
    assert.equal(first[1]?.Time, null, "BBBB did not change");

    // Request 2: AAAA moves by -4 * 1.5 = -6: Low follows, High and Open stay.
    const a2 = book.next()[0];
    assert.deepEqual(a2, {
      Symbol: "AAAA",
      Price: 57,
      Open: 63,
      Low: 57,
      High: 63,
      Close: 64.5,
      Time: "2026-01-02T03:04:06.000Z",
    });
  });

  it("raises High when the price climbs", () => {
    const random = scripted(
      [CHANGE, 0, ...Array(10).fill(NO_CHANGE), CHANGE, ...Array(10).fill(NO_CHANGE)],
      [0, 0, 2],
    );
    const book = new QuoteBook(random);
    book.next();
    const quote = book.next()[0];
    assert.equal(quote?.Open, 10);
    assert.equal(quote?.Price, 13);
    assert.equal(quote?.High, 13);
    assert.equal(quote?.Low, 10);
  });

  it("hands out copies, so callers cannot change the book", () => {
    const book = new QuoteBook(scripted(Array(11).fill(NO_CHANGE), []));
    const quotes = book.next();
    (quotes[0] as { Price: number }).Price = 999;
    assert.equal(book.snapshot()[0]?.Price, 0);
  });

  it("with real randomness, changes about a quarter of the quotes per request", () => {
    const book = new QuoteBook(mathRandom);
    let changes = 0;
    let previous = book.snapshot();
    const requests = 400;
    for (let i = 0; i < requests; i++) {
      const next = book.next();
      changes += next.filter(
        (q, j) => q.Time !== previous[j]?.Time || q.Price !== previous[j]?.Price,
      ).length;
      previous = next;
      for (const q of next) {
        if (q.Time === null) continue;
        assert.ok(q.Low <= q.Price && q.Price <= q.High, `${q.Symbol} within its low/high`);
        assert.ok(!Number.isNaN(Date.parse(q.Time)));
      }
    }
    const rate = changes / (requests * 11);
    assert.ok(rate > 0.2 && rate < 0.3, `change rate ${rate} should be near 0.25`);
  });
});
