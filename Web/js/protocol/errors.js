// Every refusal of the protocol is a ProtocolError with a stable `code`; "refuse" in
// docs/PROTOCOL.md means: this error, no state change, no output. Messages carry lengths and
// tags only, never key material or plaintext.

export class ProtocolError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

/** Stable codes, one per kind of refusal (the Swift enums' cases, flattened). */
export const ErrorCode = Object.freeze({
  malformed: 'malformed',            // an encoding broke a rule of PROTOCOL.md §2
  invalidKey: 'invalidKey',          // a public key fails §2.1, or a DH output is zero
  badSignature: 'badSignature',
  authentication: 'authentication',  // DECRYPT failed: one undistinguished error (§6.3)
  duplicate: 'duplicate',
  expired: 'expired',
  tooManySkipped: 'tooManySkipped',
  unknownKey: 'unknownKey',          // unknown prekey, sender chain or distribution
  initiationReplayed: 'initiationReplayed',
  initiationMismatch: 'initiationMismatch',
  state: 'state',                    // not allowed in this state (the responder sending first…)
  versionMismatch: 'versionMismatch',
});

export function refuse(code, message) {
  return new ProtocolError(code, message);
}

/**
 * Runs `operation` while `owner` is marked busy; a second operation on the same state meanwhile is
 * refused. Interleaved at an await, two encryptions of one chain would use one message key twice.
 */
export async function exclusively(owner, what, operation) {
  if (owner.busy) throw new ProtocolError(ErrorCode.state, `the ${what} is in use by another operation`);
  owner.busy = true;
  try {
    return await operation();
  } finally {
    owner.busy = false;
  }
}
