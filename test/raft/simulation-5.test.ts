// The seeded cluster simulation (sim/simulator.ts) with five voters at the start.
import { simulationSweep } from './sim/suite.ts';

simulationSweep({ members: 5, seeds: 1000, firstSeed: 100_001, faultRounds: 600, chunk: 100 });
