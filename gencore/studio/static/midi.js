// MIDI in the page: read a standard MIDI file (type 0 or 1) into notes, play them with WebAudio
// at any tempo, and move a playhead over the piano roll; the WAV preview plays beside it.
"use strict";

function readMidi(buffer) {
  const data = new DataView(buffer);
  let pos = 0;
  const text = (n) => String.fromCharCode(...new Uint8Array(buffer, pos, n));
  const u32 = () => { const v = data.getUint32(pos); pos += 4; return v; };
  const vlq = () => { let v = 0, b; do { b = data.getUint8(pos++); v = (v << 7) | (b & 0x7f); } while (b & 0x80); return v; };
  if (text(4) !== "MThd") throw new Error("not a MIDI file");
  const tracks = data.getUint16(10), division = data.getUint16(12);
  if (division & 0x8000) throw new Error("SMPTE time is not supported");
  pos = 8 + data.getUint32(4);
  const notes = [], tempos = [];
  let endTick = 0;
  for (let t = 0; t < tracks; t++) {
    if (text(4) !== "MTrk") throw new Error("damaged MIDI track");
    pos += 4; const size = u32(), end = pos + size;
    let tick = 0, status = 0;
    const open = new Map();
    while (pos < end) {
      tick += vlq();
      let byte = data.getUint8(pos);
      if (byte & 0x80) { status = byte; pos++; }
      if (status === 0xff) {
        const type = data.getUint8(pos++), len = vlq();
        if (type === 0x51) tempos.push({ tick, usPerBeat: (data.getUint8(pos) << 16) | (data.getUint8(pos + 1) << 8) | data.getUint8(pos + 2) });
        if (type === 0x2f) endTick = Math.max(endTick, tick);
        pos += len;
      } else if (status === 0xf0 || status === 0xf7) {
        pos += vlq();
      } else {
        const kind = status & 0xf0, channel = status & 0x0f;
        const a = data.getUint8(pos++), b = (kind === 0xc0 || kind === 0xd0) ? 0 : data.getUint8(pos++);
        const key = `${channel}:${a}`;
        if (kind === 0x90 && b > 0) open.set(key, { tick, velocity: b });
        else if (kind === 0x80 || (kind === 0x90 && b === 0)) {
          const on = open.get(key);
          if (on) { notes.push({ pitch: a, channel, start: on.tick, end: tick, velocity: on.velocity }); open.delete(key); }
        }
      }
    }
    pos = end;
  }
  const usPerBeat = tempos.length ? tempos[0].usPerBeat : 500000;
  for (const n of notes) endTick = Math.max(endTick, n.end);
  return { notes, division, bpm: 60e6 / usPerBeat, beats: endTick / division };
}

const midi = window.genStudio.midi = {
  song: null, ctx: null, voices: [], started: 0, timer: null,

  async load(url, wavUrl) {
    this.stop();
    const buffer = await (await fetch(url)).arrayBuffer();
    this.song = readMidi(buffer);
    const tempo = document.getElementById("tempo");
    tempo.value = Math.round(this.song.bpm);
    document.getElementById("tempo-out").textContent = tempo.value;
    const wav = document.getElementById("wav");
    wav.classList.toggle("hidden", !wavUrl);
    if (wavUrl) wav.src = wavUrl;
    document.getElementById("player").classList.remove("hidden");
  },

  play() {
    if (!this.song) return;
    this.stop();
    const ctx = this.ctx || (this.ctx = new (window.AudioContext || window.webkitAudioContext)());
    if (ctx.state === "suspended") ctx.resume();
    const bpm = Number(document.getElementById("tempo").value);
    const secondsPerBeat = 60 / bpm, perTick = secondsPerBeat / this.song.division;
    const t0 = ctx.currentTime + 0.05;
    const master = ctx.createGain(); master.gain.value = 0.22; master.connect(ctx.destination);
    for (const n of this.song.notes) {
      const start = t0 + n.start * perTick, stop = t0 + n.end * perTick;
      const osc = ctx.createOscillator(), gain = ctx.createGain();
      osc.type = n.channel === 9 ? "square" : "triangle";
      osc.frequency.value = 440 * Math.pow(2, (n.pitch - 69) / 12);
      const peak = 0.25 + 0.75 * n.velocity / 127;
      gain.gain.setValueAtTime(0, start);
      gain.gain.linearRampToValueAtTime(peak, start + 0.01);
      gain.gain.setTargetAtTime(0.6 * peak, start + 0.02, 0.1);
      gain.gain.setTargetAtTime(0, stop, 0.03);
      osc.connect(gain).connect(master);
      osc.start(start); osc.stop(stop + 0.2);
      this.voices.push(osc);
    }
    this.master = master;
    const total = this.song.beats * secondsPerBeat;
    this.started = t0;
    const head = document.getElementById("playhead"), image = document.getElementById("viewer-image");
    head.classList.remove("hidden");
    document.getElementById("play").textContent = "■ Stop";
    document.getElementById("viewer").dataset.playing = "1";
    const step = () => {
      const elapsed = ctx.currentTime - t0;
      if (elapsed > total) { this.stop(); return; }
      head.style.left = `${Math.max(0, elapsed / total) * image.clientWidth}px`;
      this.timer = requestAnimationFrame(step);
    };
    this.timer = requestAnimationFrame(step);
  },

  stop() {
    cancelAnimationFrame(this.timer);
    for (const v of this.voices) { try { v.stop(); } catch (e) { /* already stopped */ } }
    this.voices = [];
    if (this.master) { this.master.disconnect(); this.master = null; }
    const head = document.getElementById("playhead");
    if (head) head.classList.add("hidden");
    const button = document.getElementById("play");
    if (button) button.textContent = "▶ Play";
    const viewer = document.getElementById("viewer");
    if (viewer) delete viewer.dataset.playing;
  },
};

document.getElementById("play").addEventListener("click", () => (midi.voices.length ? midi.stop() : midi.play()));
document.getElementById("tempo").addEventListener("input", (e) => {
  document.getElementById("tempo-out").textContent = e.target.value;
  if (midi.voices.length) midi.play();
});
