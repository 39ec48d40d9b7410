"""Reference figure for docs/BENCHMARKS.md: vodozemac (Matrix's Olm, Rust) through its Python binding.

Measures the same operation as ProtocolBenchmarks' "steady chain" row: one side encrypts a
100-byte message, the other decrypts it, no DH step in between. Run it right after
`swift run -c release ProtocolBenchmarks` so that both see the same machine load:

    pip install vodozemac
    python3 Benchmarks/vodozemac_reference.py [seconds]
"""
import sys
import time

import vodozemac


def session_pair():
    alice, bob = vodozemac.Account(), vodozemac.Account()
    bob.generate_one_time_keys(1)
    one_time_key = next(iter(bob.one_time_keys.values()))
    outbound = alice.create_outbound_session(bob.curve25519_key, one_time_key)
    first = outbound.encrypt(b"hello")
    inbound, _ = bob.create_inbound_session(alice.curve25519_key, first.to_pre_key())
    # One reply so that the outbound side leaves the pre-key stage, as in a steady conversation.
    outbound.decrypt(inbound.encrypt(b"hi"))
    return outbound, inbound


def measure(seconds):
    """Best of five rounds, as ProtocolBenchmarks does."""
    outbound, inbound = session_pair()
    plaintext = b"a" * 100
    for _ in range(1000):
        inbound.decrypt(outbound.encrypt(plaintext))
    best = 0.0
    for _ in range(5):
        count = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            for _ in range(256):
                inbound.decrypt(outbound.encrypt(plaintext))
            count += 256
        best = max(best, count / (time.perf_counter() - start))
    return best


if __name__ == "__main__":
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    rate = measure(seconds)
    print(f"vodozemac {vodozemac.__name__} (Python binding), encrypt+decrypt 100 B, steady chain: "
          f"{1e6 / rate:.3f} µs, {rate:.0f}/s")
