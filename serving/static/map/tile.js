/* Tiles on the map page: one image to /segment, shown before and after (the arable mask tinted over it). */
"use strict";
(() => {
  const { serviceRoot } = agriland;
  const $ = (id) => document.getElementById(id);

  async function bitmap(blob) {
    try { return await createImageBitmap(blob); } catch (err) { return null; } // e.g. TIFF: not shown by browsers
  }

  function paint(canvas, w, h, source) {
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#444";
    ctx.fillRect(0, 0, w, h);
    if (source) ctx.drawImage(source, 0, 0, w, h);
    return ctx;
  }

  async function runTile(file) {
    const summary = $("tile-summary");
    summary.textContent = `Segmenting ${file.name}…`;
    document.body.dataset.tile = "running";
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("include_fields", "true");
    form.append("mask_encoding", "png");
    let response;
    try {
      response = await fetch(new URL("segment", serviceRoot), { method: "POST", body: form });
    } catch (err) {
      summary.textContent = "Lost the connection to the service: is it still running?";
      document.body.dataset.tile = "error";
      return;
    }
    const body = await response.json().catch(() => null);
    if (!response.ok || !body) {
      summary.textContent = (body && body.error) || `HTTP ${response.status}`;
      document.body.dataset.tile = "error";
      return;
    }
    const result = body.results[0];
    const w = result.width, h = result.height;
    const image = await bitmap(file);
    const mask = await bitmap(agriland.b64ToBlob(result.mask_png_base64, "image/png"));
    paint($("tile-before"), w, h, image);
    const after = paint($("tile-after"), w, h, image);
    const scratch = paint(document.createElement("canvas"), w, h, mask).getImageData(0, 0, w, h).data;
    const pixels = after.getImageData(0, 0, w, h);
    for (let i = 0; i < scratch.length; i += 4) {
      if (scratch[i] > 127) { // arable: tint yellow-green
        pixels.data[i] = (pixels.data[i] + 255) >> 1;
        pixels.data[i + 1] = (pixels.data[i + 1] + 212) >> 1;
        pixels.data[i + 2] = pixels.data[i + 2] >> 1;
      }
    }
    after.putImageData(pixels, 0, 0);
    $("tile-view").hidden = false;
    summary.textContent = `${result.name}: ${(100 * result.arable_fraction).toFixed(1)} % arable, ` +
      `${result.n_fields} field(s)` + (image ? "" : " (this format cannot be shown by the browser: mask only)");
    document.body.dataset.tile = "done";
  }

  $("tile-slider").addEventListener("input", (e) => { $("tile-after-clip").style.width = `${e.target.value}%`; });
  $("tile-file").addEventListener("change", (e) => { if (e.target.files.length) runTile(e.target.files[0]); });
})();
