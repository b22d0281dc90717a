"""thor-twin-images.service: `docker load` every /opt/thor-twin/images/*.tar whose image is missing."""

import glob
import json
import os
import subprocess
import tarfile

IMAGES_DIR = "/opt/thor-twin/images"


def tar_images(path):
    """[(image id, [repo tags])] from a `docker save` tarball's manifest.json (legacy and OCI layouts)."""
    with tarfile.open(path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    out = []
    for entry in manifest:
        config = os.path.basename(entry["Config"])
        digest = config[: -len(".json")] if config.endswith(".json") else config
        out.append(("sha256:" + digest, entry.get("RepoTags") or []))
    return out


def present(image_id, tags, docker="docker"):
    """True when every tag resolves to image_id (or, for an untagged image, the id exists)."""
    refs = tags or [image_id]
    res = subprocess.run([docker, "image", "inspect", "-f", "{{.Id}}", *refs], capture_output=True, text=True)
    return res.returncode == 0 and set(res.stdout.split()) == {image_id}


def load_all(directory=IMAGES_DIR, docker="docker", check_only=False):
    """Load what is missing; return the number of tarballs whose image is (still) missing."""
    missing = 0
    for path in sorted(glob.glob(os.path.join(directory, "*.tar"))):
        name = os.path.basename(path)
        try:
            images = tar_images(path)
        except (OSError, KeyError, ValueError, tarfile.TarError) as e:
            print(f"{name}: not a docker image tarball ({e})")
            missing += 1
            continue
        if all(present(i, t, docker) for i, t in images):
            print(f"{name}: present")
            continue
        if check_only:
            print(f"{name}: missing")
            missing += 1
            continue
        res = subprocess.run([docker, "load", "-q", "-i", path], capture_output=True, text=True)
        print(f"{name}: {(res.stdout or res.stderr).strip()}")
        missing += res.returncode != 0
    return missing
