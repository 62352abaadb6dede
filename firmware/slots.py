# Which firmware the device runs: the factory hx package or an over-the-air update in a slot, tried on
# probation and rolled back automatically. Lives beside main.py, outside hx: an update never replaces it.
#
# flash/slots/<name>/hx/...   an installed update (hx/ota.py writes it, verified file by file)
# flash/slots/state.json      {"active": name or null (factory), "trial": {"slot", "prev", "boots"} or null}
import json
import os

TRIAL_BOOTS = 3  # boots an update may take to become stable (online / 30 s healthy) before rollback


def _path(flash):
    return flash + "/slots/state.json"


def read(flash):
    try:
        with open(_path(flash)) as f:
            st = json.load(f)
        if isinstance(st, dict):
            return st
    except (OSError, ValueError):
        pass
    return json.loads('{"active": null, "trial": null}')


def write(flash, st):
    try:
        os.mkdir(flash + "/slots")
    except OSError:
        pass
    tmp = _path(flash) + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(st))
    os.rename(tmp, _path(flash))


def select(flash):
    """The folder to put first on sys.path for this boot (None = the factory firmware), counting a boot
    of an update on trial; after TRIAL_BOOTS unstable boots it is rolled back (st["rolled_back"])."""
    st = read(flash)
    trial = st.get("trial")
    if trial:
        trial["boots"] = trial.get("boots", 0) + 1
        if trial["boots"] > TRIAL_BOOTS:
            rollback(flash, st, "not stable after %d boots" % TRIAL_BOOTS)
            st = read(flash)
        else:
            write(flash, st)
    name = st.get("active")
    return flash + "/slots/" + name if name else None


def rollback(flash, st=None, why="failed"):
    """Back to the previous firmware now (the failed slot stays on flash for inspection)."""
    st = st or read(flash)
    trial = st.get("trial") or {}
    st["rolled_back"] = {"slot": st.get("active"), "why": why, "ver": trial.get("version")}
    st["active"] = trial.get("prev")
    st["trial"] = None
    write(flash, st)


def confirm(flash):
    """This boot is stable: an update on trial is kept. True if there was one."""
    st = read(flash)
    if not st.get("trial"):
        return False
    st["trial"] = None
    write(flash, st)
    return True


def forget_hx():
    """Drop a half-imported hx package (an update that failed to import) so the previous one loads."""
    import sys

    for name in [n for n in sys.modules if n == "hx" or n.startswith("hx.")]:
        del sys.modules[name]
