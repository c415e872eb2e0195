import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  countConnectedSince,
  HEALTH_INTERVAL_MS,
  healthyToAdd,
  healthyToRemove,
  type Member,
} from '../../src/server/membership.ts';

const voter = (id: bigint): Member => ({ id, name: `m${id}`, peerUrls: [], clientUrls: [], isLearner: false });
const NOW = 1_000_000;
const LONG_AGO = new Date(NOW - HEALTH_INTERVAL_MS - 1);
const JUST_NOW = new Date(NOW - 100);

/** Member 1 is this one; `streams` says since when its stream to each other member is up. */
function view(streams: Record<string, Date | null>) {
  return (id: bigint) => streams[id.toString()] ?? null;
}

test('countConnectedSince counts this member and the peers connected for long enough', () => {
  const voters = [voter(1n), voter(2n), voter(3n)];
  assert.equal(countConnectedSince(voters, 1n, view({ 2: LONG_AGO, 3: LONG_AGO }), NOW - HEALTH_INTERVAL_MS), 3);
  assert.equal(countConnectedSince(voters, 1n, view({ 2: LONG_AGO, 3: JUST_NOW }), NOW - HEALTH_INTERVAL_MS), 2);
  assert.equal(countConnectedSince(voters, 1n, view({ 2: null, 3: null }), NOW - HEALTH_INTERVAL_MS), 1);
});

test('a member is added only when every voter has been connected for the health interval', () => {
  const voters = [voter(1n), voter(2n), voter(3n)];
  assert.equal(healthyToAdd(voters, 1n, view({ 2: LONG_AGO, 3: LONG_AGO }), NOW), true);
  assert.equal(healthyToAdd(voters, 1n, view({ 2: LONG_AGO, 3: null }), NOW), false); // one down
  assert.equal(healthyToAdd(voters, 1n, view({ 2: LONG_AGO, 3: JUST_NOW }), NOW), false); // just reconnected
  assert.equal(healthyToAdd([voter(1n)], 1n, view({}), NOW), true); // growing a one-member cluster
});

test('a voter is removed when it is down, or when the live members left are still a quorum', () => {
  const three = [voter(1n), voter(2n), voter(3n)];
  // All up: removing any leaves 2 live of 2.
  assert.equal(healthyToRemove(three, 1n, 2n, view({ 2: LONG_AGO, 3: LONG_AGO }), NOW), true);
  // Member 3 down: removing it is fine, removing live member 2 would leave 1 live of 2.
  assert.equal(healthyToRemove(three, 1n, 3n, view({ 2: LONG_AGO, 3: null }), NOW), true);
  assert.equal(healthyToRemove(three, 1n, 2n, view({ 2: LONG_AGO, 3: null }), NOW), false);
  // Removing this member itself while another is down.
  assert.equal(healthyToRemove(three, 1n, 1n, view({ 2: LONG_AGO, 3: null }), NOW), false);
  // Four voters, one down: removing a live one leaves 2 live of 3, a quorum.
  const four = [...three, voter(4n)];
  assert.equal(healthyToRemove(four, 1n, 2n, view({ 2: LONG_AGO, 3: LONG_AGO, 4: null }), NOW), true);
});
