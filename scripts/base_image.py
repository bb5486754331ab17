"""Build ``dockyard/busybox:local`` FROM scratch with Debian's static busybox.

Nothing can be pulled on an offline machine, so the example app and the tests start from this
image. Real users start from Docker Hub images as usual.
"""

from __future__ import annotations

import io
import shutil
import sys
import tarfile

import docker

IMAGE = "dockyard/busybox:local"
DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/www"]
CMD ["sh"]
"""


def main() -> int:
    client = docker.from_env()
    busybox = shutil.which("busybox")
    if busybox is None:
        print("busybox is missing: apt-get install busybox-static", file=sys.stderr)
        return 1
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(DOCKERFILE)
        tar.addfile(info, io.BytesIO(DOCKERFILE))
        tar.add(busybox, arcname="busybox")
    buf.seek(0)
    for chunk in client.api.build(fileobj=buf, custom_context=True, tag=IMAGE, rm=True, decode=True):
        if "error" in chunk:
            print(chunk["error"], file=sys.stderr)
            return 1
    print(f"{IMAGE} is ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
