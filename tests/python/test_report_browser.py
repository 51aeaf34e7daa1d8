"""Issue 18: `muspec report` checked in a real browser (headless Chromium, Debian `chromium`).

The oracle is the JSON the other commands write (summary.json, laws.json, ns_config.json) and
what Chromium itself renders: the DOM it builds after running the page's script (--dump-dom)
and the pixels it paints (--screenshot). Two browser launches in all (Chromium is slow).

Skipped when chromium is not installed, unless the CI environment variable is set: then missing
chromium is a failure (tools/test.sh installs it). Skipped in sanitizer builds (slow, and the
browser does not run our C++; tests/test_html_report.cpp renders reports there).
"""

import html.parser
import json
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unittest
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MUSPEC = os.environ.get("MUSPEC_BINARY", os.path.join(ROOT, "build", "tools", "muspec"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = 'model.layers.0.mlp.up_proj.weight"><img src=x onerror="document.title=1">&amp;<b>'


def _sanitized_build():
    """True when MUSPEC_BINARY comes from a build configured with MUSPEC_SANITIZE=ON."""
    cache = os.path.join(os.path.dirname(os.path.dirname(MUSPEC)), "CMakeCache.txt")  # BUILD/tools/muspec
    try:
        with open(cache, encoding="utf-8", errors="replace") as f:
            return "MUSPEC_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def _need_chromium():
    if _sanitized_build():
        # The browser exercises the page, not our C++; the ASan build still renders reports
        # in tests/test_html_report.cpp.
        raise unittest.SkipTest("sanitizer build: the browser tests run in the Release build")
    if CHROMIUM:
        return
    if os.environ.get("CI"):
        raise AssertionError("CI is set but chromium is not installed (tools/test.sh installs it)")
    raise unittest.SkipTest("chromium is not installed (Debian package chromium)")


def _chromium(*args):
    # --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--force-device-scale-factor=1", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"chromium failed ({r.returncode}): {r.stderr[-2000:]}")
    return r.stdout


def _write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class _Dom(html.parser.HTMLParser):
    """The elements of a dumped DOM as (tag, attrs, text) with text the element's own text."""

    VOID = {"meta", "input", "br", "img", "link", "rect", "line", "path", "circle"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements, self.stack = [], []

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "children": []}
        if self.stack:
            self.stack[-1]["children"].append(el)
        self.elements.append(el)
        if tag not in self.VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i]["tag"] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        for el in self.stack:
            el["text"] += data


def _find(root_list, tag=None, cls=None, **attrs):
    out = []
    for el in root_list:
        if tag and el["tag"] != tag:
            continue
        if cls and cls not in el["attrs"].get("class", "").split():
            continue
        if all(el["attrs"].get(k.replace("_", "-")) == v for k, v in attrs.items()):
            out.append(el)
    return out


def _descendants(el):
    for c in el["children"]:
        yield c
        yield from _descendants(c)


def _close(shown, value, digits=4):
    """`shown` (text with `digits` significant digits) is `value` rounded."""
    if value is None:
        return shown in ("–", "nan", "inf")
    return abs(float(shown) - value) <= 0.51 * 10 ** (1 - digits) * abs(value) + 1e-300


def _read_png(path):
    """RGB(A) 8-bit PNG -> (width, height, rows of bytes, channels). Chromium's screenshots only."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0
            ch = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), w * ch, [], bytearray(w * ch)
    for y in range(h):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], prev[i - ch] if i >= ch else 0
            if ftype == 1: line[i] = (line[i] + a) & 255
            elif ftype == 2: line[i] = (line[i] + b) & 255
            elif ftype == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, rows, ch


class ReportBrowserTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        _need_chromium()
        cls.tmp = tempfile.mkdtemp(prefix="muspec-report-")
        hostile_dir = os.path.join(cls.tmp, "hostile")
        os.makedirs(hostile_dir)
        rng = np.random.default_rng(0)
        _write_safetensors(os.path.join(hostile_dir, "model.safetensors"), {HOSTILE: rng.standard_normal((24, 40))})
        out = os.path.join(cls.tmp, "out")
        os.makedirs(out)
        cls.out = out

        def run(*args):
            r = subprocess.run([MUSPEC, *args], capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                raise AssertionError(f"muspec {args[0]} failed: {r.stderr[-3000:]}")

        runs = [os.path.join(ROOT, "sample_data", "runs", d) for d in ("d16", "d40", "d80")]  # 3 sizes: laws fit
        run("scan", *runs, hostile_dir, "-o", f"{out}/spectra.h5", "--json", f"{out}/summary.json", "-q")
        run("fit", f"{out}/spectra.h5", "-o", f"{out}/laws.json", "--burn-in", "100", "--quantiles", "0.05,0.5")
        run("recommend", "--spectra", f"{out}/spectra.h5", "--run", "d80", "--burn-in", "100",
            "-o", f"{out}/ns_config.json")
        cls.report = os.path.join(out, "report.html")
        run("report", out, "-o", cls.report, "-q")
        with open(f"{out}/summary.json") as f:
            cls.summary = json.load(f)["matrices"]
        with open(f"{out}/laws.json") as f:
            cls.laws = json.load(f)
        with open(f"{out}/ns_config.json") as f:
            cls.config = json.load(f)
        cls.spectrum_index = next(i for i, m in enumerate(cls.summary)
                                  if m["kind"] == "momentum" and m["parameter"] in cls.config["parameters"]
                                  and m["analysed"] and m["shape"][0] * m["shape"][1] > 0)
        # Tables build their rows from embedded JSON when shown: open=all shows (builds) every one,
        # after the sort was asked for, so the pending sort must apply when the rows are built.
        url = "file://" + cls.report + f"#sort=q0.05:desc&spectrum={cls.spectrum_index}&open=all"
        dom = _chromium("--dump-dom", url)
        cls.dom = _Dom()
        cls.dom.feed(dom)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def els(self, tag=None, cls=None, **attrs):
        return _find(self.dom.elements, tag, cls, **attrs)

    def test_overview_counts_match_summary(self):
        self.assertEqual(self.els(id="ov-matrices")[0]["text"], str(len(self.summary)))
        runs = {m["run"] for m in self.summary}
        self.assertTrue(self.els(id="ov-runs")[0]["text"].startswith(f"{len(runs)}: "))
        self.assertEqual(self.els(id="ov-steps")[0]["text"], str(len({(m["run"], m["step"]) for m in self.summary})))
        self.assertEqual(self.els(id="ov-kinds")[0]["text"], ", ".join(sorted({m["kind"] for m in self.summary})))

    def test_table_cells_equal_summary_json_and_sort_applies(self):
        tables = self.els("table", "sortable")
        self.assertEqual(sum(len(_find(list(_descendants(t)), "tr")) - 1 for t in tables), len(self.summary))
        levels = sorted(self.summary[0]["quantiles"], key=float)
        checked = 0
        for t in tables:
            head = [th["attrs"]["data-key"] for th in _find(list(_descendants(t)), "th")]
            metrics = [k for k in ("alpha", "alpha_weighted", "log_norm", "log_spectral_norm", "matrix_entropy") if k in head]
            self.assertIn("alpha", metrics)  # scans carry the layer metrics: their columns are shown
            rows = [r for r in _find(list(_descendants(t)), "tr") if _find(r["children"], "td")]
            shown_order = []
            for r in rows:
                cells = _find(r["children"], "td")
                i = int(_find(list(_descendants(cells[0])), "button")[0]["attrs"]["data-i"])
                m = self.summary[i]
                self.assertEqual(cells[0]["text"], m["name"])
                self.assertEqual(cells[1]["text"], m["kind"])
                self.assertEqual(cells[2]["text"], m["op_type"])
                self.assertEqual(cells[4]["text"], f'{m["shape"][0]}×{m["shape"][1]}')
                col = dict(zip(head, cells))
                expect = {"sigma_max": m["sigma_max"], "cond": m["cond"], "stable_rank": m["stable_rank"],
                          "effective_rank": m["effective_rank"]}
                for l in levels:
                    expect["q" + l] = m["quantiles"][l]["rel_frob"] if m["analysed"] else None
                for k in metrics:  # summary.json holds null where a metric is undefined
                    expect[k] = m.get(k) if m["analysed"] else None
                for key, v in expect.items():
                    self.assertTrue(_close(col[key]["text"], v), f"{m['name']} {key}: {col[key]['text']} vs {v}")
                    if v is not None:
                        self.assertAlmostEqual(float(col[key]["attrs"]["data-v"]) / v, 1.0, delta=1e-5)
                self.assertEqual(int(col["below_floor"]["text"]), m["below_floor"])
                shown_order.append(m["quantiles"]["0.05"]["rel_frob"] if m["analysed"] else math.nan)
                checked += 1
            # The hash asked for q0.05 descending: compare with sorting the JSON ourselves (NaN last).
            finite = sorted((v for v in shown_order if not math.isnan(v)), reverse=True)
            expected = finite + [math.nan] * (len(shown_order) - len(finite))
            self.assertEqual([repr(v) for v in shown_order], [repr(v) for v in expected])
            th = _find(list(_descendants(t)), "th", data_key="q0.05")[0]
            self.assertIn("desc", th["attrs"]["class"].split())
        self.assertEqual(checked, len(self.summary))

    def test_hostile_tensor_name_is_text_not_markup(self):
        self.assertEqual(self.els("img"), [])
        names = [b["text"] for b in self.els("button", "m")]
        self.assertIn(HOSTILE, names)
        self.assertEqual(self.els("title")[0]["text"], "muspec report")

    def test_spectrum_on_demand_matches_summary_and_config(self):
        svg = self.els("svg", "spectrum")
        self.assertEqual(len(svg), 1)
        m = self.summary[self.spectrum_index]
        kids = list(_descendants(svg[0]))
        ticks = [(float(l["attrs"]["y1"]), int(l["attrs"]["data-label"][2:])) for l in _find(kids, "line", "ytick")]
        (y0, e0), (y1, e1) = ticks[0], ticks[-1]
        to_log = lambda py: e0 + (py - y0) / (y1 - y0) * (e1 - e0)
        path = [el for el in kids if el["tag"] == "path"][0]["attrs"]["d"]
        pts = [tuple(map(float, p.split())) for p in re.findall(r"[ML]([-\d.]+ [-\d.]+)", path)]
        self.assertEqual(len(pts), min(m["shape"]))  # a small matrix: every value
        self.assertAlmostEqual(to_log(pts[0][1]), math.log10(m["sigma_max"] / m["frobenius"]), delta=0.003)
        # The orange curve: each value after the configured NS steps, x <- a x + b x^3 + c x^5
        # from X / (||X||_F (1 + delta)). The page keeps log10 values to 3 decimals, so the
        # expected image is bracketed by the images of the value times 10^(+-0.0005).
        entry = self.config["parameters"][m["parameter"]]
        mapped = [el for el in kids if el["tag"] == "path" and el["attrs"].get("class") == "mapped"]
        self.assertEqual(len(mapped), 1)
        first = tuple(map(float, re.findall(r"M([-\d.]+ [-\d.]+)", mapped[0]["attrs"]["d"])[0].split()))
        self.assertAlmostEqual(first[0], pts[0][0], delta=0.01)

        def image(v):
            x = v / (1 + entry["normalization"]["delta"])
            for a, b, c in entry["coefficients"]:
                x = a * x + b * x ** 3 + c * x ** 5
            return math.log10(abs(x))
        v = m["sigma_max"] / m["frobenius"]
        ends = [image(v * 10 ** -0.0005), image(v), image(v * 10 ** 0.0005)]
        self.assertGreaterEqual(to_log(first[1]), min(ends) - 0.002)
        self.assertLessEqual(to_log(first[1]), max(ends) + 0.002)
        thr = entry["stability"]["threshold"]
        label = [t["text"] for t in _find(kids, "text") if t["text"].startswith("schedule threshold")][0]
        self.assertTrue(_close(label.split()[-1], thr))

    def test_config_heat_map_and_flops_equal_ns_config(self):
        cells = {(int(td["attrs"]["data-layer"]), td["attrs"]["data-op"]): td["text"]
                 for td in self.els("td") if "data-layer" in td["attrs"]}
        expect = {}
        for p in self.config["parameters"].values():
            expect.setdefault((p["layer"], p["op_type"]), set()).add(p["steps"])
        self.assertEqual(cells, {k: "/".join(map(str, sorted(v))) for k, v in expect.items()})
        t = self.config["totals"]
        self.assertTrue(_close(self.els(id="flops")[0]["text"], t["flops"]))
        self.assertTrue(_close(self.els(id="default-flops")[0]["text"], t["default_flops"]))

    def test_laws_figures_one_per_level_with_fitted_exponents(self):
        figs = self.els("div", "law-figure")
        levels = sorted({law["quantile"] for law in self.laws["laws"]})
        self.assertEqual(sorted(float(f["attrs"]["data-level"]) for f in figs), levels)
        for f in figs:
            text = f["text"]
            laws = [law for law in self.laws["laws"] if law["quantile"] == float(f["attrs"]["data-level"])]
            self.assertTrue(laws)
            for law in laws:
                if law["status"] == "ok":
                    self.assertIn(f"β = {law['beta']:.3f}", text)

    def _profile_expectation(self, run, kind, level):
        ms = [m for m in self.summary if m["run"] == run and m["kind"] == kind and m["analysed"]]
        last = max(m["step"] for m in ms)
        groups = {}
        for m in ms:
            if m["step"] == last and m["layer"] >= 0 and m["num_layers"] > 1:
                groups.setdefault((m["op_type"], m["layer"] / (m["num_layers"] - 1)), []).append(
                    m["quantiles"][level]["rel_frob"])
        return {k: sum(v) / len(v) for k, v in groups.items()}

    def test_profile_markers_sit_at_the_data(self):
        run, kind, level = "d80", "momentum", "0.05"
        panel = self.els("svg", "profile", data_run=run, data_kind=kind, data_level=level)[0]
        kids = list(_descendants(panel))
        expect = self._profile_expectation(run, kind, level)
        to_px = _axis_maps(kids)
        circles = _find(kids, "circle", "pt")
        self.assertEqual(len(circles), len(expect))
        seen = {(float(c["attrs"]["cx"]), float(c["attrs"]["cy"])) for c in circles}
        for (op, depth), v in expect.items():
            x, y = to_px(depth, v)
            self.assertTrue(any(abs(cx - x) < 0.02 and abs(cy - y) < 0.02 for cx, cy in seen), f"{op} {depth} {v}")

    def test_screenshot_of_a_profile_shows_markers_at_the_data(self):
        run, kind, level = "d80", "momentum", "0.05"
        with open(self.report, encoding="utf-8") as f:
            page = f.read()
        start = page.index(f'<svg xmlns="http://www.w3.org/2000/svg" class="panel profile" data-run="{run}" '
                           f'data-kind="{kind}" data-level="{level}"')
        svg = page[start:page.index("</svg>", start) + 6]
        # Lines and titles hidden: only the markers keep their op colors.
        doc = ("<!DOCTYPE html><html><head><style>body{margin:0} path{display:none}</style></head><body>"
               + svg + "</body></html>")
        html_path, png = os.path.join(self.tmp, "panel.html"), os.path.join(self.tmp, "panel.png")
        with open(html_path, "w", encoding="utf-8") as f:
            f.write(doc)
        _chromium("--window-size=400,300", f"--screenshot={png}", "file://" + html_path)
        w, h, rows, ch = _read_png(png)
        dom = _Dom()
        dom.feed(svg)
        to_px = _axis_maps(dom.elements)
        colors = {c["attrs"]["fill"] for c in _find(dom.elements, "circle", "pt")}
        expect = self._profile_expectation(run, kind, level)
        pts = {k: to_px(k[1], v) for k, v in expect.items()}
        checked = 0
        for (op, depth), (x, y) in pts.items():
            if any(o != (op, depth) and math.hypot(x - p[0], y - p[1]) < 8 for o, p in pts.items()):
                continue  # overlapping markers: the top one hides part of the other
            color = _op_fill(dom.elements, x, y)
            rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
            xs, ys = [], []
            for py in range(max(0, int(y) - 6), min(h, int(y) + 7)):
                row = rows[py]
                for px in range(max(0, int(x) - 6), min(w, int(x) + 7)):
                    if tuple(row[px * ch:px * ch + 3]) == rgb:
                        xs.append(px + 0.5), ys.append(py + 0.5)
            self.assertGreater(len(xs), 4, f"no {color} marker painted near {x:.1f},{y:.1f} ({op} {depth})")
            self.assertAlmostEqual(sum(xs) / len(xs), x, delta=1.0)
            self.assertAlmostEqual(sum(ys) / len(ys), y, delta=1.0)
            checked += 1
        self.assertGreaterEqual(checked, 3)
        self.assertTrue(colors)


def _axis_maps(elements):
    """data (x linear, y log) -> pixel, from the panel's tick marks and their labels."""
    xt = [(float(l["attrs"]["data-label"]), float(l["attrs"]["x1"])) for l in _find(elements, "line", "xtick")]
    yt = [(int(l["attrs"]["data-label"][2:]), float(l["attrs"]["y1"])) for l in _find(elements, "line", "ytick")]
    (xa, pa), (xb, pb) = xt[0], xt[-1]
    (ea, qa), (eb, qb) = yt[0], yt[-1]
    return lambda x, y: (pa + (x - xa) / (xb - xa) * (pb - pa), qa + (math.log10(y) - ea) / (eb - ea) * (qb - qa))


def _op_fill(elements, x, y):
    best = min(_find(elements, "circle", "pt"),
               key=lambda c: math.hypot(float(c["attrs"]["cx"]) - x, float(c["attrs"]["cy"]) - y))
    return best["attrs"]["fill"]


if __name__ == "__main__":
    unittest.main()
