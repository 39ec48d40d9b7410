// KDF_CK (PROTOCOL.md §6.2): message key = HMAC(ck, 0x01), next chain key = HMAC(ck, 0x02).
// Shared by the Double Ratchet and sender keys (§7.1).
import { KDFLabels } from '../kdf-labels.js';
import { hmac } from '../hmac-sha256.js';

const messageKeySeed = new Uint8Array([KDFLabels.messageKeySeed]);
const chainKeySeed = new Uint8Array([KDFLabels.chainKeySeed]);

export async function stepChain(chainKey) {
  const [messageKey, nextChainKey] = await Promise.all([hmac(chainKey, messageKeySeed), hmac(chainKey, chainKeySeed)]);
  return { messageKey, nextChainKey };
}
