/* The cluster gallery: per cluster of the served DEC model, its name, land cover and sample tiles (read-only). */
"use strict";
(async () => {
  const { el, getJson } = agriland;
  const note = document.getElementById("gallery-note");
  try {
    const data = await getJson("api/gallery");
    note.textContent = `DEC model ${data.model_version}: ${data.n_clusters} clusters. ` +
      (data.samples ? "Sample tiles of the training run." :
        "No sample tiles: set AGRILAND_GALLERY_DIR to a training run's galleries/ folder.") +
      " Names come from the model manifest (agriland clusters name).";
    const grid = document.getElementById("gallery");
    for (const c of data.clusters) {
      const badges = [];
      if (c.cropland) badges.push(el("span", { className: "badge", text: "cropland" }));
      if (c.is_arable) badges.push(el("span", { className: "badge", text: "arable" }));
      const card = el("article", { className: "card", "data-cluster": c.cluster }, [
        el("h2", { text: `#${c.cluster} ${c.name || "(unnamed)"}` }),
        el("p", { text: `land cover: ${c.land_cover || "unknown"}` +
          (c.n_tiles != null ? ` · ${c.n_tiles} training tiles` : "") }),
        el("p", {}, badges),
      ]);
      if (c.sample) card.append(el("img", { src: c.sample, alt: `sample tiles of cluster ${c.cluster}` }));
      grid.append(card);
    }
    document.body.dataset.state = "done";
  } catch (err) {
    const box = document.getElementById("error");
    box.textContent = `Could not load the clusters: ${err.message}`;
    box.hidden = false;
    note.textContent = "";
    document.body.dataset.state = "error";
  }
})();
