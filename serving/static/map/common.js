/* agriland pages: shared helpers. Text from answers and uploads only ever goes into textContent, never HTML. */
"use strict";
const agriland = (() => {
  const serviceRoot = new URL("../", window.location.href); // the pages live at <service>/map/...
  const mapRoot = new URL("./", window.location.href);

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "text") node.textContent = String(value);
      else if (key === "className") node.className = value;
      else node.setAttribute(key, String(value));
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function b64ToBlob(b64, type) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    return new Blob([bytes], { type });
  }

  async function getJson(path) {
    let response;
    try {
      response = await fetch(new URL(path, mapRoot), { cache: "no-store" });
    } catch (err) {
      throw new Error("lost the connection to the service");
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error((body && body.error) || `HTTP ${response.status}`);
    return body;
  }

  return { serviceRoot, mapRoot, el, b64ToBlob, getJson };
})();
