#!/usr/bin/env python3
"""examples/demo/cni.py: the two things of a CNI runtime that examples/awsvpc-task.sh needs and
bash does badly. Standard library only.

  cni.py render FILE [--plugin N] [PATH=VALUE...]
      print the JSON config FILE (one line) with each PATH set to VALUE. PATH is dotted, numbers
      index lists (ipam.id, plugins.0.ipam.dataDir); VALUE is read as JSON when it parses as
      JSON, else taken as a string. With --plugin N, FILE is a conflist and the result is the
      config libcni gives its Nth plugin (name and cniVersion of the list added).

  cni.py list VERB FILE CACHE [CAPABILITY_ARGS]
      run the conflist FILE as libcni runs it: ADD runs the plugins in order, each with the
      previous result as prevResult; CHECK in order and DEL in reverse, both with the cached
      ADD result as prevResult; every plugin gets runtimeConfig with the capability arguments
      (a JSON object) that it declares in "capabilities". CNI_CONTAINERID, CNI_NETNS,
      CNI_IFNAME, CNI_PATH come from the environment. ADD prints the final result and keeps it
      in CACHE; DEL removes CACHE. The first failing plugin stops the run: its error object
      goes to stdout, exit status 1.
"""

import json
import os
import subprocess
import sys


def set_path(doc, path, value):
    keys = path.split(".")
    node = doc
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    last = keys[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def plugin_conf(conflist, index):
    conf = dict(conflist["plugins"][index])
    conf["name"] = conflist["name"]
    conf["cniVersion"] = conflist["cniVersion"]
    return conf


def render(args):
    path, rest = args[0], args[1:]
    with open(path) as f:
        doc = json.load(f)
    plugin = None
    if rest[:1] == ["--plugin"]:
        plugin, rest = int(rest[1]), rest[2:]
    for assignment in rest:
        key, _, value = assignment.partition("=")
        set_path(doc, key, parse_value(value))
    if plugin is not None:
        doc = plugin_conf(doc, plugin)
    print(json.dumps(doc, separators=(",", ":")))


def find_plugin(kind):
    for d in os.environ.get("CNI_PATH", "").split(":"):
        p = os.path.join(d, kind)
        if d and os.access(p, os.X_OK):
            return p
    sys.exit(f"cni.py: no plugin {kind!r} in CNI_PATH={os.environ.get('CNI_PATH', '')}")


def invoke(verb, conf):
    env = dict(os.environ, CNI_COMMAND=verb)
    run = subprocess.run([find_plugin(conf["type"])], input=json.dumps(conf).encode(),
                         env=env, capture_output=True, timeout=60)
    sys.stderr.write(run.stderr.decode(errors="replace"))
    if run.returncode != 0:
        sys.stdout.write(run.stdout.decode(errors="replace") + "\n")
        sys.exit(f"cni.py: {verb} {conf['type']} failed (exit {run.returncode})")
    out = run.stdout.decode()
    return json.loads(out) if out.strip() else None


def run_list(args):
    verb, path, cache = args[0], args[1], args[2]
    capability_args = json.loads(args[3]) if len(args) > 3 else {}
    with open(path) as f:
        conflist = json.load(f)
    cached = None
    if verb != "ADD" and os.path.exists(cache):
        with open(cache) as f:
            cached = json.load(f)
    order = list(range(len(conflist["plugins"])))
    if verb == "DEL":
        order.reverse()
    prev = cached
    for i in order:
        conf = plugin_conf(conflist, i)
        runtime = {k: v for k, v in capability_args.items()
                   if conf.get("capabilities", {}).get(k)}
        if runtime:
            conf["runtimeConfig"] = runtime
        if prev is not None:
            conf["prevResult"] = prev
        result = invoke(verb, conf)
        if verb == "ADD":
            prev = result
    if verb == "ADD":
        with open(cache, "w") as f:
            json.dump(prev, f)
        print(json.dumps(prev))
    elif verb == "DEL" and os.path.exists(cache):
        os.remove(cache)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "render":
        render(sys.argv[2:])
    elif len(sys.argv) >= 5 and sys.argv[1] == "list":
        run_list(sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: the caller cleans up and says so
        sys.exit(130)
