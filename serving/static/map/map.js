/* The map page: a GeoTIFF to /segment_scene (+ /cluster_scene), then the scene, its fields and the cluster grid.
 * Busy answers (503/429 with Retry-After) are retried by themselves; other refusals show the service's message. */
"use strict";
(() => {
  const { serviceRoot, el, b64ToBlob, getJson } = agriland;
  const $ = (id) => document.getElementById(id);
  const PALETTE = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
    "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#fffac8", "#800000", "#aaffc3", "#808000",
    "#ffd8b1", "#000075", "#808080"];
  const MAX_RETRIES = 20;

  const map = L.map("map", { zoomControl: true, zoomSnap: 0.25, fadeAnimation: false }).setView([20, 0], 2);
  const layers = L.control.layers(null, null, { collapsed: false }).addTo(map);
  let current = []; // layers and object URLs of the answer on screen
  const view = { fields: null, clusters: null, answer: null, grid: null };
  window.agrilandMap = view; // read by the browser test and handy in the console

  function setState(state) { document.body.dataset.state = state; }
  function status(text, percent) {
    $("status-text").textContent = text;
    const bar = $("progress");
    bar.hidden = percent == null;
    if (percent != null) bar.value = percent;
  }
  function showError(text) {
    $("error").textContent = text;
    $("error").hidden = !text;
  }

  function clearAnswer() {
    for (const item of current) {
      if (typeof item === "string") URL.revokeObjectURL(item);
      else { map.removeLayer(item); layers.removeLayer(item); }
    }
    current = [];
    view.fields = view.clusters = view.answer = view.grid = null;
    for (const id of ["totals", "downloads", "legend"]) $(id).hidden = true;
    $("legend-list").replaceChildren();
  }

  function ticket() {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /* One POST of the scene; resolves {status, retryAfter, body} (status 0: the connection was lost). */
  function post(route, file, fields, id, label) {
    return new Promise((resolve) => {
      const form = new FormData();
      for (const [key, value] of Object.entries(fields)) if (value !== "") form.append(key, value);
      form.append("file", file, file.name);
      const xhr = new XMLHttpRequest();
      let poll = null;
      const stopPolling = () => { if (poll) clearInterval(poll); poll = null; };
      xhr.open("POST", new URL(route, serviceRoot));
      xhr.setRequestHeader("X-Agriland-Ticket", id);
      xhr.responseType = "text";
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable) status(`${label}: uploading ${file.name}`, Math.round((100 * e.loaded) / e.total));
      };
      xhr.upload.onload = () => {
        setState("queued");
        status(`${label}: uploaded, waiting for the service`, null);
        const ask = async () => {
          try {
            const place = await getJson(`api/queue?ticket=${id}`);
            if (place.state === "waiting") {
              status(`${label}: waiting in the scene queue, position ${place.position} ` +
                `(${place.running} running, ${place.waiting} waiting)`, null);
            } else if (place.state === "running") {
              setState("processing");
              status(`${label}: processing the scene`, null);
            }
          } catch (err) { /* the answer itself says whether the connection was lost */ }
        };
        ask();
        poll = setInterval(ask, 1000);
      };
      xhr.onload = () => {
        stopPolling();
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = null; }
        resolve({ status: xhr.status, retryAfter: Number(xhr.getResponseHeader("Retry-After")), body,
          text: xhr.responseText });
      };
      xhr.onerror = xhr.onabort = xhr.ontimeout = () => { stopPolling(); resolve({ status: 0 }); };
      setState("uploading");
      xhr.send(form);
    });
  }

  function wait(seconds, label, message) {
    return new Promise((resolve) => {
      let left = seconds;
      const tick = () => {
        status(`${label}: ${message} Retrying in ${left} s…`, null);
        if (left-- <= 0) { clearInterval(timer); resolve(); }
      };
      const timer = setInterval(tick, 1000);
      tick();
    });
  }

  /* POST until answered: a busy service (503/429 + Retry-After) is asked again after Retry-After seconds. */
  async function ask(route, file, fields, label) {
    for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
      const answer = await post(route, file, fields, ticket(), label);
      if (answer.status === 200 && answer.body) return answer.body;
      if (answer.status === 0) {
        throw new Error("Lost the connection to the service: is it still running? Nothing was answered.");
      }
      const message = (answer.body && answer.body.error) || `HTTP ${answer.status}: ${answer.text.slice(0, 200)}`;
      if ((answer.status === 503 || answer.status === 429) && answer.retryAfter > 0 && attempt < MAX_RETRIES) {
        setState("retrying");
        await wait(answer.retryAfter, label, `the service is busy (${message}).`);
        continue;
      }
      const error = new Error(message);
      error.status = answer.status;
      throw error;
    }
    throw new Error(`${label}: the service stayed busy after ${MAX_RETRIES} retries`);
  }

  function download(id, blob, name) {
    const url = URL.createObjectURL(blob);
    current.push(url);
    const link = $(id);
    link.href = url;
    link.download = name;
  }

  function fieldPopup(p) {
    return el("div", { className: "popup" }, [
      el("strong", { text: `Field ${p.field_id}` }),
      el("dl", {}, [
        el("dt", { text: "Area" }), el("dd", { text: `${Number(p.area_ha).toFixed(2)} ha` }),
        el("dt", { text: "Confidence" }), el("dd", { text: p.confidence == null ? "n/a" : Number(p.confidence).toFixed(3) }),
      ]),
    ]);
  }

  function drawScene(answer) {
    const stem = String(answer.name || "scene").replace(/\.[^.]*$/, "").replace(/[^\w.-]+/g, "_");
    let bounds = null;
    if (answer.preview) {
      const url = URL.createObjectURL(b64ToBlob(answer.preview.png_base64, "image/png"));
      current.push(url);
      bounds = L.latLngBounds(answer.preview.bounds);
      const image = L.imageOverlay(url, bounds, { className: "agriland-scene" }).addTo(map);
      layers.addOverlay(image, "Scene");
      current.push(image);
    }
    const fields = L.geoJSON(answer.polygons, {
      style: () => ({ color: "#ffffff", weight: 2, fillColor: "#ffffff", fillOpacity: 0.12, className: "agriland-field" }),
      onEachFeature: (feature, layer) => layer.bindPopup(() => fieldPopup(feature.properties)),
    }).addTo(map);
    fields.eachLayer((layer) => {
      const p = layer.feature.properties;
      const node = layer.getElement();
      node.dataset.fieldId = String(p.field_id);
      node.dataset.areaHa = String(p.area_ha);
    });
    layers.addOverlay(fields, "Fields");
    current.push(fields);
    view.fields = fields;
    view.answer = answer;
    const s = answer.summary;
    $("total-fields").textContent = String(s.n_polygons);
    $("total-arable").textContent = `${s.arable_ha.toFixed(2)} ha (${(100 * s.arable_fraction).toFixed(1)} %)`;
    $("total-valid").textContent = `${s.valid_ha.toFixed(2)} ha`;
    $("totals").hidden = false;
    download("dl-geojson", new Blob([JSON.stringify(answer.polygons)], { type: "application/geo+json" }), `${stem}_fields.geojson`);
    if (answer.mask_geotiff_base64) download("dl-cog", b64ToBlob(answer.mask_geotiff_base64, "image/tiff"), `${stem}_mask.tif`);
    if (answer.polygons_geoparquet_base64) {
      download("dl-parquet", b64ToBlob(answer.polygons_geoparquet_base64, "application/vnd.apache.parquet"), `${stem}_fields.parquet`);
    }
    $("downloads").hidden = false;
    if (!bounds && answer.polygons.features.length) bounds = fields.getBounds();
    if (bounds) map.fitBounds(bounds);
  }

  function drawClusters(grid) {
    const color = (k) => PALETTE[k % PALETTE.length];
    const cells = L.geoJSON(grid, {
      style: (f) => ({ color: color(f.properties.cluster), weight: 1, fillOpacity: 0.3, className: "agriland-cell" }),
      onEachFeature: (feature, layer) => layer.bindPopup(() => {
        const p = feature.properties;
        return el("div", { className: "popup" }, [
          el("strong", { text: `Cluster ${p.cluster}: ${p.name || "(unnamed)"}` }),
          el("dl", {}, [
            el("dt", { text: "Land cover" }), el("dd", { text: p.land_cover || "unknown" }),
            el("dt", { text: "Confidence" }), el("dd", { text: Number(p.confidence).toFixed(3) }),
            el("dt", { text: "Cell" }), el("dd", { text: `row ${p.row}, col ${p.col}` }),
          ]),
        ]);
      }),
    }).addTo(map);
    cells.bringToBack();
    layers.addOverlay(cells, "Clusters");
    current.push(cells);
    view.clusters = cells;
    view.grid = grid;
    const seen = new Map();
    for (const f of grid.features) seen.set(f.properties.cluster, f.properties);
    for (const [k, p] of [...seen.entries()].sort((a, b) => a[0] - b[0])) {
      const swatch = el("span", { className: "swatch" });
      swatch.style.backgroundColor = color(k);
      $("legend-list").append(el("li", { "data-cluster": k }, [swatch,
        el("span", { text: `#${k} ${p.name || "(unnamed)"} · ${p.land_cover || "unknown"}` })]));
    }
    $("legend").hidden = false;
  }

  async function runScene(file) {
    clearAnswer();
    showError("");
    const bands = $("bands").value;
    try {
      const answer = await ask("segment_scene", file, { bands, include_mask: "true", include_preview: "true",
        include_geoparquet: "true" }, "Fields");
      drawScene(answer);
      if ($("with-clusters").checked) {
        setState("clusters");
        drawClusters(await ask("cluster_scene", file, { bands }, "Clusters"));
      }
      status(`${answer.name}: ${answer.summary.n_polygons} fields`, null);
      setState("done");
    } catch (err) {
      status("Not answered.", null);
      showError(err.message);
      setState("error");
    }
  }

  $("scene-file").addEventListener("change", (e) => { if (e.target.files.length) runScene(e.target.files[0]); });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) runScene(e.dataTransfer.files[0]);
  });

  getJson("api/config").then((config) => {
    if (config.basemap) {
      const attribution = el("span", { text: config.basemap.attribution || "" }).innerHTML; // escaped text
      layers.addBaseLayer(L.tileLayer(config.basemap.url, { attribution, maxZoom: 19 }).addTo(map), "Basemap");
    }
  }).catch((err) => showError(`Could not read the page settings: ${err.message}`));
})();
