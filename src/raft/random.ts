// A small seeded pseudo-random generator (splitmix32), for Config.random in tests and
// simulations. Raft itself never draws randomness except through Config.random.

/** Returns a function yielding numbers in [0, 1), the same sequence for the same seed. */
export function createSeededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
    z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
    z ^= z >>> 15;
    return (z >>> 0) / 0x1_0000_0000;
  };
}
