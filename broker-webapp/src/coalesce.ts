/**
 * Shares one run of an asynchronous call among all who ask for it while it is in flight.
 *
 * Everyone who calls `run()` while a run is in flight gets that run's outcome, value or
 * error alike. Nobody gets the outcome of a run that had settled before they asked: a run
 * is forgotten before its outcome reaches anyone, so whoever asks after that, even in a
 * callback reacting to that outcome, starts a new run. This saves calls without caching
 * anything across time.
 */
export class CoalescedCall<T> {
  readonly #call: () => Promise<T>;
  #inFlight: Promise<T> | undefined;
  #runs = 0;
  #joined = 0;

  constructor(call: () => Promise<T>) {
    this.#call = call;
  }

  /** The outcome of the run in flight, or of a new run if none is. */
  run(): Promise<T> {
    if (this.#inFlight) {
      this.#joined += 1;
      return this.#inFlight;
    }
    this.#runs += 1;
    // `new Promise` turns a synchronous throw into a rejection shared like any other.
    const current: Promise<T> = new Promise<T>((resolve) => resolve(this.#call())).finally(() => {
      if (this.#inFlight === current) this.#inFlight = undefined;
    });
    this.#inFlight = current;
    return current;
  }

  /** Runs started so far (each one call). */
  get runs(): number {
    return this.#runs;
  }

  /** Callers so far that shared a run someone else started. */
  get joined(): number {
    return this.#joined;
  }
}
