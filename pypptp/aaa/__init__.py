"""AAA backends: who may connect, with what, and the record of what they did.

pppd hands authentication and accounting to plugins (``plugin radius.so``);
this layer is pypptp's counterpart.  It sits above :mod:`pypptp.conf` (it reads
the backends' configuration files through it) and below :mod:`pypptp.daemon`
(which calls it for each session): it may import the sans-IO cores,
:mod:`pypptp.aio`, :mod:`pypptp.host` and :mod:`pypptp.conf`, never the daemon.

:mod:`~pypptp.aaa.dictionary` loads the RADIUS dictionary shipped in
``pypptp/aaa/data/dictionary`` (the attributes of RFC 2865/2866/2869/3162/5176
and Microsoft's RFC 2548, written from the RFCs), so that a RADIUS exchange
needs no file from the host's FreeRADIUS or radiusclient installation.
:mod:`~pypptp.aaa.radius` is the RADIUS client: Access-Request for PAP, CHAP-MD5, MS-CHAP and MS-CHAPv2,
accounting, retries and failover over the servers of a
:class:`~pypptp.conf.radiusclient.RadiusConfig`, on the event loop's own UDP sockets.
"""

from pypptp.aaa.dictionary import DICTIONARY_PATH, load_dictionary
from pypptp.aaa.radius import RadiusClient, RadiusReply, to_verdict

__all__ = ["DICTIONARY_PATH", "RadiusClient", "RadiusReply", "load_dictionary", "to_verdict"]
