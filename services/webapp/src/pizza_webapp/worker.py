"""The gunicorn worker class: gevent, with threads left real.

librdkafka blocks in C (poll, flush, the wait for an acknowledgement). Under
gunicorn's stock gevent worker threading is patched, so the producer's callback
thread would become a greenlet whose poll() stops the event loop. Here only
sockets, select, ssl, time, ... are patched: librdkafka's and the producer's
threads stay real, and requests reach Kafka through a pool of real threads
(server.ThreadOffload).
"""

from __future__ import annotations

from gevent import monkey, socket
from gunicorn.workers.ggevent import GeventWorker


class PizzaGeventWorker(GeventWorker):
    def patch(self):
        monkey.patch_all(thread=False)
        # As GeventWorker.patch: the listening sockets become gevent sockets.
        self.sockets = [socket.socket(s.FAMILY, socket.SOCK_STREAM, fileno=s.sock.detach()) for s in self.sockets]
