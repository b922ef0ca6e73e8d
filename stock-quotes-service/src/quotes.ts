/**
 * The stock quotes the service serves, and the random walk that moves them. The field
 * names are the original Go demo's JSON names (QuoteJson), so both versions stay
 * wire-compatible.
 */
import type { QuoteJson } from "@federation-demo/service-kit";

/** Where the walk gets its randomness; injectable so tests can script it. */
export interface RandomSource {
  /** Uniform in [0, 1). */
  uniform(): number;
  /** Standard normal: mean 0, standard deviation 1. */
  normal(): number;
}

/** Math.random, with normals from the Box-Muller transform. */
export const mathRandom: RandomSource = {
  uniform: () => Math.random(),
  normal: () => {
    // 1 - random() lies in (0, 1], so the logarithm is finite.
    const u1 = 1 - Math.random();
    const u2 = Math.random();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  },
};

/** AAAA, BBBB, ... KKKK: the original's eleven symbols. */
export const SYMBOLS: readonly string[] = Array.from({ length: 11 }, (_, i) =>
  String.fromCharCode(65 + i).repeat(4),
);

const CHANGE_PROBABILITY = 0.25;
const STEP_SCALE = 1.5;

/** The market: a fixed list of symbols whose prices wander a little on each read. */
export class QuoteBook {
  readonly #quotes: QuoteJson[];
  readonly #random: RandomSource;
  readonly #now: () => Date;

  constructor(random: RandomSource = mathRandom, now: () => Date = () => new Date()) {
    this.#random = random;
    this.#now = now;
    this.#quotes = SYMBOLS.map((symbol) => ({
      Symbol: symbol,
      Price: 0,
      Open: 0,
      Low: 0,
      High: 0,
      Close: 0,
      Time: null,
    }));
  }

  /** Moves each quote with probability 1/4 (as the original does per request) and returns copies. */
  next(): QuoteJson[] {
    for (const quote of this.#quotes) {
      if (this.#random.uniform() < CHANGE_PROBABILITY) this.#move(quote);
    }
    return this.snapshot();
  }

  /** The quotes as they are, without moving them. */
  snapshot(): QuoteJson[] {
    return this.#quotes.map((quote) => ({ ...quote }));
  }

  #move(quote: QuoteJson): void {
    const delta = this.#random.normal() * STEP_SCALE;
    if (quote.Time === null) {
      // First change: the day opens somewhere between 10 and 110.
      quote.Open = delta + 10 + 100 * this.#random.uniform();
      quote.Price = quote.Open;
      quote.Low = quote.Open;
      quote.High = quote.Open;
      quote.Close = quote.Open - this.#random.normal() * STEP_SCALE;
    } else {
      quote.Price += delta;
    }
    quote.Time = this.#now().toISOString();
    quote.Low = Math.min(quote.Low, quote.Price);
    quote.High = Math.max(quote.High, quote.Price);
  }
}
