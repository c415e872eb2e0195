// The seeded cluster simulation (sim/simulator.ts) with three voters at the start.
import { simulationSweep } from './sim/suite.ts';

simulationSweep({ members: 3, seeds: 1500, firstSeed: 1, faultRounds: 600, chunk: 100 });
