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
  // of sight); the video then plays muted (the person unmutes it). Sound plays only for a
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
  // Decided before the player's autoplay starts (loadstart comes first), and kept: Gradio's
  // player writes its own `muted` (never set: false) on the element at each update of its
  // value, and a job's event sends its last video twice (its last step, then Gradio's
  // "completed" message repeats it). A repeat that landed after loadstart (a busy machine)
  // played a tile's video with sound. So a silent video ignores the player's writes; an
  // unmute by no script (the native controls, in full screen) or by the player's volume
  // slider is the person's, and stands.
  const muted = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, "muted");
  const quiet = new WeakMap(); // #video's <video> -> whether it stays silent
  const ours = (video) => video instanceof HTMLVideoElement && video.closest("#video");
  const decide = (video, silent) => {
    if (!quiet.has(video)) {
      Object.defineProperty(video, "muted", {
        configurable: true,
        get() { return muted.get.call(this); },
        set(value) { if (!quiet.get(this)) muted.set.call(this, value); },
      });
    }
    quiet.set(video, silent);
    muted.set.call(video, silent);
  };
  document.addEventListener("loadstart", (e) => {
    if (ours(e.target)) decide(e.target, !sound);
  }, true);
  document.addEventListener("play", (e) => { // one whose loadstart came unseen (detached)
    if (ours(e.target) && !quiet.has(e.target)) decide(e.target, !sound);
  }, true);
  document.addEventListener("volumechange", (e) => {
    if (ours(e.target) && quiet.get(e.target) && !e.target.muted) quiet.set(e.target, false);
  }, true);
  document.addEventListener("input", (e) => {
    const video = e.target instanceof Element && e.target.matches("#video input.volume-slider")
      ? document.querySelector("#video video") : null;
    if (video && quiet.get(video) && Number(e.target.value) > 0) decide(video, false);
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
