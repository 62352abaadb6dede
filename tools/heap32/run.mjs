// Runs tools/heap32/burst.py on MicroPython's WebAssembly port (32-bit words, like the ESP32) under Node.js.
// node tools/heap32/run.mjs <path to micropython.mjs> <firmware dir (hx/*.py or a build with *.mpy)> <cap>
import fs from "fs";
import path from "path";

const [mjs, fwDir, cap] = process.argv.slice(2);
const { loadMicroPython } = await import(path.resolve(mjs));
let out = "";
const mp = await loadMicroPython({ heapsize: 1024 * 1024, stdout: (d) => { out += d + "\n"; } });

function copyTree(src, dst) {
  mp.FS.mkdir(dst);
  for (const name of fs.readdirSync(src)) {
    const s = path.join(src, name);
    if (fs.statSync(s).isDirectory()) copyTree(s, dst + "/" + name);
    else if (name.endsWith(".py") || name.endsWith(".mpy")) mp.FS.writeFile(dst + "/" + name, fs.readFileSync(s));
  }
}

mp.FS.mkdir("/fw");
copyTree(path.join(fwDir, "hx"), "/fw/hx");
// No sockets in this port: the MQTT client's module imports `socket` but the probe never connects.
mp.FS.writeFile("/fw/socket.py", "# stand-in: the heap probe opens no connection\n");
const here = path.dirname(new URL(import.meta.url).pathname);
mp.FS.writeFile("/fw/burst.py", fs.readFileSync(path.join(here, "burst.py")));
function py(code) {
  mp.runPython(`try:\n    ${code}\nexcept BaseException as e:\n    import sys\n    sys.print_exception(e)\n    print("FAILED")\n`);
  if (out.includes("FAILED")) {
    process.stdout.write(out);
    process.exit(1);
  }
}
// Each call returns to JS before the next: only then can this port's GC see that garbage is garbage.
py(`exec(open("/fw/burst.py").read(), globals())`);
py(`load("/fw", "/flash", ${Number(cap)})`);
py(`R = [measure()]`);
py(`app()`);
py(`R.append(measure())`);
for (let i = 0; i < 200; i++) {
  py(`MORE = step()`);
  py(`measure()`);
  if (mp.globals.get("MORE") === false) break;
}
py(`print(report(R[0], R[1]))`);
process.stdout.write(out);
