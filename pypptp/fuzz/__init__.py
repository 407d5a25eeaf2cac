"""A daemon-level fuzzer for pypptpd: ``python -m pypptp.fuzz`` (root and iproute2).

It starts a real ``pypptpd`` in its own network namespaces, brings up a legit client session that
pings steadily, and then plays batches of mutated inputs at the daemon: control sequences on TCP
1723, PPP frames in GRE from an unauthenticated call and from an authenticated session, and raw GRE
packets.  After every batch it checks that the daemon is alive and logged no traceback, that the
legit session kept its pings, and that descriptors, ``pppN`` devices, pool addresses and Call IDs
came back once the fuzz connections closed (:mod:`pypptp.fuzz.runner`).

Everything is drawn from one ``random.Random(seed)`` (:mod:`pypptp.fuzz.inputs`), so a seed and a
batch number reproduce a batch's inputs exactly; a failing check prints them in hex and saves the
batch for ``--replay``.
"""

from pypptp.fuzz.inputs import Batch, Step, batch_at, batches

__all__ = ["Batch", "Step", "batch_at", "batches"]
