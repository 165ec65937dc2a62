#!/usr/bin/env python3
"""Tiny RTSP server for ingest tests: serves one H.264 MP4 at rtsp://127.0.0.1:PORT/clip.

Usage: rtsp_server.py CLIP.mp4 PORT   (PORT 0 picks a free one)
Prints "READY <port>" on stdout once it accepts connections; runs until killed or until its
stdin closes (so it never outlives a test process that died).
Each client gets its own pipeline from the start of the clip, paced in real time, so it
behaves like a camera for the client.
"""
import os
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    clip, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{clip}" ! qtdemux ! rtph264pay name=pay0 pt=96 config-interval=1 )'
    )
    server.get_mount_points().add_factory("/clip", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    print(f"READY {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
