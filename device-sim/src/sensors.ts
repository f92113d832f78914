/**
 * Simulated inputs of the node: a potentiometer on a 12-bit ADC and a switch. The pot follows a slow
 * sine plus a little noise, so a dashboard shows a smooth curve and any gap or reordering is visible
 * at a glance; the switch flips now and then.
 */
export interface SensorOptions {
  /** Period of the pot's sine, ms; default 60 s. */
  periodMs?: number
  /** Peak noise added to the pot, ADC counts; default 12. */
  noise?: number
  /** Chance per reading that the switch flips; default 1/30. */
  flipChance?: number
  /** Source of randomness in [0, 1); tests pass a seeded one. */
  random?: () => number
}

export class SimulatedSensors {
  private sw: 0 | 1 = 0
  private readonly periodMs: number
  private readonly noise: number
  private readonly flipChance: number
  private readonly random: () => number

  constructor(opts: SensorOptions = {}) {
    this.periodMs = opts.periodMs ?? 60_000
    this.noise = opts.noise ?? 12
    this.flipChance = opts.flipChance ?? 1 / 30
    this.random = opts.random ?? Math.random
  }

  /** One sample at wall-clock time `nowMs`: `pot` 0..4095, `switch` 0|1. */
  read(nowMs: number): { pot: number; switch: 0 | 1 } {
    const phase = (2 * Math.PI * (nowMs % this.periodMs)) / this.periodMs
    const raw = 2048 + 1700 * Math.sin(phase) + (this.random() * 2 - 1) * this.noise
    const pot = Math.max(0, Math.min(4095, Math.round(raw)))
    if (this.random() < this.flipChance) this.sw = this.sw ? 0 : 1
    return { pot, switch: this.sw }
  }
}
