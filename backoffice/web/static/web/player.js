// The player: an incident's segments, decrypted one at a time by the key custodian, appended to one
// SourceBuffer (Media Source Extensions) at their place on the incident's timeline. No inline script (CSP).
//
// It fetches the timeline (where each segment lies), then the pieces from the playhead on, at most
// AHEAD_S ahead of it, and starts playing as soon as the first piece is in. A seek fetches the piece that
// holds the target first (an unrelated download in flight is cancelled). What lies far from the playhead
// is removed from the buffer again, so a long incident never fills the browser's memory. A missing or
// refused segment is a gap: the player says so and continues after it.
"use strict";

(function () {
  var video = document.getElementById("player");
  if (!video) {
    return;
  }
  var statusLine = document.getElementById("player-status");
  var list = document.getElementById("player-slots");
  var t = video.dataset;  // the texts, translated by the server (data-t-*)
  var AHEAD_S = 30;       // decrypt and buffer this far ahead of the playhead
  var KEEP_BEHIND_S = 60; // keep this much behind the playhead ...
  var KEEP_AHEAD_S = 90;  // ... and this much ahead; the rest is removed from the buffer
  var slots = [];
  var source = null;
  var buffer = null;
  var mime = null;
  var appended = {};      // stem -> its piece is in the buffer
  var failed = {};        // stem -> why it cannot play (a gap from now on)
  var fetching = null;    // {stem, controller} of the download in flight
  var pumping = false;
  var started = false;
  var stopped = false;

  function fill(template, values) {
    return (template || "").replace(/%\((\w+)\)s/g, function (all, key) {
      return key in values ? String(values[key]) : all;
    });
  }

  function say(message, isError) {
    statusLine.textContent = message;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  function stop(message) {
    stopped = true;
    if (fetching) {
      fetching.controller.abort();
    }
    say(message, true);
  }

  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var m = Math.floor(s / 60);
    return m + ":" + String(s % 60).padStart(2, "0");
  }

  function end(slot) {
    return slot.start_s + slot.duration_s;
  }

  function mid(slot) {
    return slot.start_s + slot.duration_s / 2;
  }

  function buffered(time) {
    if (!buffer) {
      return false;
    }
    var ranges = buffer.buffered;
    for (var i = 0; i < ranges.length; i++) {
      if (ranges.start(i) <= time && time < ranges.end(i)) {
        return true;
      }
    }
    return false;
  }

  function indexAt(time) {
    var chosen = 0;
    for (var i = 0; i < slots.length; i++) {
      if (slots[i].start_s <= time + 0.001) {
        chosen = i;
      }
    }
    return chosen;
  }

  function ready(slot, time) {
    if (!appended[slot.stem] || !buffered(mid(slot))) {
      return false;
    }
    // the slot under the playhead must also hold the playhead's own time (a seek into a trimmed edge)
    return !(slot.start_s <= time && time < end(slot)) || buffered(time);
  }

  function mark(slot, state) {
    var item = list && list.querySelector('[data-stem="' + slot.stem + '"]');
    if (item) {
      item.className = state;
    }
  }

  // The next piece to fetch: from the slot under the playhead on, within AHEAD_S, not yet in the buffer.
  function nextSlot() {
    var time = video.currentTime;
    for (var i = indexAt(time); i < slots.length; i++) {
      var slot = slots[i];
      if (slot.start_s > time + AHEAD_S) {
        return null;
      }
      if (end(slot) > time && !failed[slot.stem] && !ready(slot, time)) {
        return slot;
      }
    }
    return null;
  }

  function settled() {
    return new Promise(function (resolve, reject) {
      function done(event) {
        buffer.removeEventListener("updateend", done);
        buffer.removeEventListener("error", done);
        if (event.type === "error") {
          reject(new Error("the browser could not take the piece"));
        } else {
          resolve();
        }
      }
      buffer.addEventListener("updateend", done);
      buffer.addEventListener("error", done);
    });
  }

  async function fetchPiece(slot) {
    var controller = new AbortController();
    fetching = {stem: slot.stem, controller: controller};
    mark(slot, "loading");
    say(fill(t.tLoading, {n: slot.n, total: slots.length}));
    try {
      var response = await fetch(slot.url, {credentials: "same-origin", cache: "no-store", signal: controller.signal});
      if (response.status === 403 || response.status === 503) {
        stop(response.status === 403 ? t.tRefused : t.tUnavailable);
        return null;
      }
      if (!response.ok) {
        failed[slot.stem] = (await response.text()) || response.statusText;
        mark(slot, "failed");
        say(fill(t.tFailed, {n: slot.n, reason: failed[slot.stem]}), true);
        return null;
      }
      return {mime: response.headers.get("Content-Type"), offset: parseFloat(response.headers.get("X-Timestamp-Offset")),
              data: await response.arrayBuffer()};
    } catch (error) {
      if (error.name === "AbortError") {
        mark(slot, appended[slot.stem] ? "ready" : "");
        return null;
      }
      throw error;
    } finally {
      fetching = null;
    }
  }

  // Remove what lies far from the playhead (on slot boundaries, so no slot is left half there).
  async function trim(hard) {
    var time = video.currentTime;
    var behind = hard ? 5 : KEEP_BEHIND_S;
    var ahead = hard ? AHEAD_S : KEEP_AHEAD_S;
    var first = slots[indexAt(time - behind)];
    var later = slots.filter(function (s) { return s.start_s > time + ahead; })[0];
    var cuts = [];
    if (first && first.start_s > 0 && time - behind > 0) {
      cuts.push([0, first.start_s]);
    }
    if (later && source.duration > later.start_s) {
      cuts.push([later.start_s, source.duration]);
    }
    for (var i = 0; i < cuts.length; i++) {
      buffer.remove(cuts[i][0], cuts[i][1]);
      await settled();
    }
    slots.forEach(function (slot) {
      if (appended[slot.stem] && !buffered(mid(slot))) {
        delete appended[slot.stem];
        mark(slot, "");
      }
    });
  }

  async function append(slot, piece) {
    if (!buffer) {
      buffer = source.addSourceBuffer(piece.mime);
      buffer.mode = "segments";
      mime = piece.mime;
    } else if (piece.mime !== mime && buffer.changeType) {
      buffer.changeType(piece.mime);
      mime = piece.mime;
    }
    await trim(false);
    buffer.timestampOffset = piece.offset;
    try {
      buffer.appendBuffer(piece.data);
    } catch (error) {
      if (error.name !== "QuotaExceededError") {
        throw error;
      }
      await trim(true);
      buffer.timestampOffset = piece.offset;
      buffer.appendBuffer(piece.data);
    }
    await settled();
    appended[slot.stem] = true;
    mark(slot, "ready");
    say(fill(t.tReady, {n: slot.n, total: slots.length}));
    if (!started) {
      started = true;
      var playing = video.play();
      if (playing) {
        playing.catch(function () { say(t.tPressPlay); });
      }
    }
  }

  // The whole incident is in when its last slot is: then the video can end instead of waiting for more.
  function maybeEnd() {
    var last = slots[slots.length - 1];
    if (source.readyState === "open" && buffer && !buffer.updating && ready(last, -1)) {
      source.endOfStream();
    }
  }

  // Past a gap (a segment that never arrived or cannot play): on to the next slot that can.
  function skipGap() {
    var time = video.currentTime;
    var i = indexAt(time);
    var here = slots[i];
    var next = null;
    for (var k = i + 1; k < slots.length && next === null; k++) {
      next = failed[slots[k].stem] ? null : slots[k];
    }
    if (next === null) {
      return;
    }
    if (!failed[here.stem]) {
      if (next.start_s - end(here) < 0.1 || time < end(here) - 0.25) {
        return;  // no gap after this slot, or its pictures still play
      }
      if (video.readyState >= HTMLMediaElement.HAVE_FUTURE_DATA && time < end(here)) {
        return;  // its last pictures still play (the browser stops at the last one, waiting for more)
      }
    }
    say(fill(t.tGap, {from: clock(time), to: clock(next.start_s)}));
    video.currentTime = next.start_s;
  }

  async function pump() {
    if (pumping || stopped || !source || source.readyState === "closed") {
      return;
    }
    pumping = true;
    try {
      var slot;
      while (!stopped && (slot = nextSlot()) !== null) {
        var piece = await fetchPiece(slot);
        if (piece) {
          await append(slot, piece);
        }
      }
      if (!stopped) {
        maybeEnd();
      }
    } catch (error) {
      say(fill(t.tError, {reason: error.message}), true);
      window.setTimeout(pump, 3000);  // a network hiccup: try again
    } finally {
      pumping = false;
    }
  }

  function listSlots() {
    if (!list) {
      return;
    }
    slots.forEach(function (slot) {
      var item = document.createElement("li");
      item.setAttribute("data-stem", slot.stem);
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = fill(t.tSegment, {n: slot.n, from: clock(slot.start_s), to: clock(end(slot))});
      button.addEventListener("click", function () {
        video.currentTime = slot.start_s;
        video.focus();
      });
      item.appendChild(button);
      list.appendChild(item);
    });
  }

  async function start() {
    if (!window.MediaSource) {
      stop(t.tUnsupported);
      return;
    }
    source = new MediaSource();
    var opened = new Promise(function (resolve) { source.addEventListener("sourceopen", resolve, {once: true}); });
    video.src = URL.createObjectURL(source);
    var response = await fetch(video.getAttribute("data-timeline"), {credentials: "same-origin", cache: "no-store"});
    if (!response.ok) {
      stop(response.status === 403 ? t.tRefused : fill(t.tError, {reason: response.statusText}));
      return;
    }
    var timeline = await response.json();
    slots = timeline.slots.map(function (slot, i) { slot.n = i + 1; return slot; });
    listSlots();
    await opened;
    source.duration = timeline.duration_s;
    video.addEventListener("seeking", function () {
      var target = slots[indexAt(video.currentTime)];
      if (fetching && fetching.stem !== target.stem && !ready(target, video.currentTime)) {
        fetching.controller.abort();  // the target's piece first
      }
      pump();
    });
    video.addEventListener("timeupdate", pump);
    video.addEventListener("waiting", skipGap);
    window.setInterval(function () {
      if (!video.paused || video.seeking) {
        skipGap();
      }
      pump();
    }, 500);
    pump();
  }

  start().catch(function (error) { stop(fill(t.tError, {reason: error.message})); });
}());
