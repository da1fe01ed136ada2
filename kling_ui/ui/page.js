() => {
  // A HEIC photo may be refused by the upload widget itself ("Invalid file type"), before
  // our own check can explain it; this says why, beside the image.
  const say = (files) => {
    const heic = Array.from(files || []).find((f) => /\.(heic|heif)$/i.test(f.name));
    const box = document.getElementById("image");
    if (!heic || !box) return;
    let note = document.getElementById("heic-note");
    if (!note) {
      note = document.createElement("p");
      note.id = "heic-note";
      note.setAttribute("role", "alert");
      box.insertAdjacentElement("afterend", note);
    }
    note.textContent = `⚠ ${heic.name} is a HEIC photo (the iPhone's usual format), which ` +
      "isn't supported: export it as JPEG and upload that.";
  };
  document.addEventListener("change", (e) => say(e.target && e.target.files), true);
  document.addEventListener("drop", (e) => say(e.dataTransfer && e.dataTransfer.files), true);
  window.klingHeicWatch = true;

  // The live region the progress card speaks through (wiring.ANNOUNCE_JS fills it).
  const region = document.createElement("div");
  region.id = "kui-announcer";
  region.className = "kui-sr-only";
  region.setAttribute("role", "status");
  region.setAttribute("aria-live", "polite");
  document.body.appendChild(region);

  // The card's clocks move between updates: [data-tick] counts up from its value,
  // [data-countdown] down, each from when it was first seen.
  const clock = (s) => {
    s = Math.max(0, Math.floor(s));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  };
  setInterval(() => {
    const now = Date.now();
    document.querySelectorAll("#progress-card [data-tick], #progress-card [data-countdown]")
      .forEach((el) => {
        if (!el.dataset.t0) el.dataset.t0 = String(now);
        const gone = (now - Number(el.dataset.t0)) / 1000;
        if (el.dataset.tick !== undefined) {
          el.textContent = clock(Number(el.dataset.tick) + gone);
        } else {
          const left = Number(el.dataset.countdown) - gone;
          el.textContent = left > 0 ? clock(left) : "moments";
        }
      });
  }, 1000);

  // A result comes into view, and no sound starts that nobody asked for (issue 23 item 15).
  // A gallery tile or Resume brings the card and its video into view (they sit above, out
  // of sight); the video then plays muted (the player unmutes it). Sound plays only for a
  // job this tab's Generate started: that press asked for a video with its sound. While
  // this tab watches a job (Stop watching is on), a tile click is refused: the watched
  // job keeps its sound, and nothing moves.
  let sound = false;
  document.addEventListener("click", (e) => {
    const target = e.target instanceof Element ? e.target : null;
    if (!target) return;
    const stop = document.getElementById("stop");
    if (target.closest("#generate")) {
      sound = true;
    } else if (stop && !stop.disabled) {
      return;
    } else if (target.closest("#gallery .thumbnail-item, #resume")) {
      sound = false;
      const card = document.getElementById("progress-card");
      if (card) card.scrollIntoView({behavior: "smooth", block: "start"});
    }
  }, true);
  // Before the player's autoplay starts (loadstart comes first): muted unless asked for.
  document.addEventListener("loadstart", (e) => {
    const video = e.target;
    if (video instanceof HTMLVideoElement && video.closest("#video")) {
      video.muted = !sound;
    }
  }, true);

  // Gradio's own markup, mended for screen readers (axe-core): an empty video's box has an
  // aria-label but no role; the upload buttons' and the gallery tiles' aria-labels differ
  // from the words they show ("Thumbnail 1 of 3"; without one, the shown words are the
  // name: a tile's caption).
  const mend = () => {
    for (const el of document.querySelectorAll("div.empty[aria-label]:not([role])")) {
      el.setAttribute("role", "img");
    }
    for (const el of document.querySelectorAll(
        "button.upload-container[aria-label], button.thumbnail-item[aria-label]")) {
      el.removeAttribute("aria-label");
    }
  };
  mend();
  new MutationObserver(mend).observe(document.body,
    {childList: true, subtree: true, attributes: true, attributeFilter: ["aria-label"]});
}
