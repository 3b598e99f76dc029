// The music map's points: reading the binary map (/api/map?format=binary, layout in discovery/map_cache.py), a grid
// that finds the points under the pointer or inside a lasso, and a small WebGL2 renderer that draws every point in
// one call from the typed arrays as they arrived (uint16 coordinates, one tag code a point; no object per point).
// Without WebGL2, or where WebGL runs in software and the map is large, the points are written into a 2-D canvas's
// pixels instead.
window.MapPoints = (() => {
  "use strict";
  const MAGIC = "AMAP";
  const STEPS = 65535;

  // The binary map → {header, count, coords (Uint16Array x0 y0 x1 y1 …), codes (Uint8Array or Uint16Array),
  // none (the code of "no tag")}. The arrays are views of `buffer`, not copies.
  function decode(buffer) {
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < 16) throw new Error("the map answer is too short");
    const view = new DataView(buffer);
    const magic = String.fromCharCode(...new Uint8Array(buffer, 0, 4));
    const version = view.getUint16(4, true);
    const codeSize = view.getUint16(6, true);
    const count = view.getUint32(8, true);
    const length = view.getUint32(12, true);
    if (magic !== MAGIC || version !== 1 || (codeSize !== 1 && codeSize !== 2)) {
      throw new Error(`the map answer is not a version-1 binary map (${JSON.stringify(magic)}, version ${version})`);
    }
    const at = 16 + length;
    if (buffer.byteLength !== at + count * (4 + codeSize)) {
      throw new Error(`a map of ${count} points cannot be ${buffer.byteLength} bytes long`);
    }
    const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 16, length)));
    // typed arrays read the platform's byte order: little-endian, as the format is, on every browser platform
    const coords = new Uint16Array(buffer, at, count * 2);
    const codes = codeSize === 1 ? new Uint8Array(buffer, at + 4 * count, count)
      : new Uint16Array(buffer, at + 4 * count, count);
    return { header, count, coords, codes, none: codeSize === 1 ? 0xff : 0xffff };
  }

  // Map coordinates of point i (the quantised ones, as drawn).
  function pointOf(map, i) {
    const [x0, y0, x1, y1] = map.header.bounds;
    return [x0 + (map.coords[2 * i] / STEPS) * (x1 - x0), y0 + (map.coords[2 * i + 1] / STEPS) * (y1 - y0)];
  }

  // A uniform grid over the unit square of the quantised coordinates: the points of each cell, found by a counting
  // sort (two passes, two typed arrays). `near` and `inside` read only the cells that can hold an answer.
  class PointIndex {
    constructor(map) {
      const n = map.count;
      const size = n > 200000 ? 512 : n > 5000 ? 128 : 16;
      const cells = new Uint32Array(size * size + 1);
      const cellOf = new Uint32Array(n);
      const shift = 65536 / size;
      for (let i = 0; i < n; i += 1) {
        const c = Math.floor(map.coords[2 * i + 1] / shift) * size + Math.floor(map.coords[2 * i] / shift);
        cellOf[i] = c;
        cells[c + 1] += 1;
      }
      for (let c = 1; c < cells.length; c += 1) cells[c] += cells[c - 1];
      const fill = cells.slice(0, size * size);
      const order = new Uint32Array(n);
      for (let i = 0; i < n; i += 1) order[fill[cellOf[i]]++] = i;
      Object.assign(this, { map, size, cells, order, shift });
    }

    // Call visit(i) for each point whose quantised coordinates are in [qx0, qx1] × [qy0, qy1] (cells overlapping).
    forBox(qx0, qy0, qx1, qy1, visit) {
      const clamp = (v) => Math.min(this.size - 1, Math.max(0, Math.floor(v / this.shift)));
      const [cx0, cx1, cy0, cy1] = [clamp(qx0), clamp(qx1), clamp(qy0), clamp(qy1)];
      if (qx1 < 0 || qy1 < 0 || qx0 > STEPS || qy0 > STEPS) return;
      for (let cy = cy0; cy <= cy1; cy += 1) {
        for (let c = cy * this.size + cx0, end = cy * this.size + cx1; c <= end; c += 1) {
          for (let k = this.cells[c]; k < this.cells[c + 1]; k += 1) visit(this.order[k]);
        }
      }
    }
  }

  // The view: which part of the map the canvas shows, and the conversions between map, pixel and quantised units.
  class View {
    constructor() { this.x = [0, 1]; this.y = [0, 1]; this.width = 1; this.height = 1; }

    fit(bounds) {
      const pad = (lo, hi) => {
        const span = hi - lo || 2;
        const mid = (lo + hi) / 2;
        return [mid - span * 0.55, mid + span * 0.55];
      };
      this.x = pad(bounds[0], bounds[2]);
      this.y = pad(bounds[1], bounds[3]);
    }

    toScreen(x, y) {
      return [(x - this.x[0]) / (this.x[1] - this.x[0]) * this.width,
        (1 - (y - this.y[0]) / (this.y[1] - this.y[0])) * this.height];
    }

    toMap(px, py) {
      return [this.x[0] + (px / this.width) * (this.x[1] - this.x[0]),
        this.y[0] + (1 - py / this.height) * (this.y[1] - this.y[0])];
    }

    zoom(factor, px = this.width / 2, py = this.height / 2) {
      const [mx, my] = this.toMap(px, py);
      this.x = [mx - (mx - this.x[0]) / factor, mx + (this.x[1] - mx) / factor];
      this.y = [my - (my - this.y[0]) / factor, my + (this.y[1] - my) / factor];
    }

    pan(dx, dy) {  // by pixels
      const sx = (this.x[1] - this.x[0]) / this.width;
      const sy = (this.y[1] - this.y[0]) / this.height;
      this.x = [this.x[0] - dx * sx, this.x[1] - dx * sx];
      this.y = [this.y[0] + dy * sy, this.y[1] + dy * sy];
    }
  }

  const VERTEX = `#version 300 es
    in vec2 a_pos;      // quantised coordinates, normalised to 0..1
    in uint a_code;     // tag code: its colour is a texel of the palette (alpha 0: hidden)
    uniform vec2 u_scale;
    uniform vec2 u_offset;
    uniform float u_size;
    uniform sampler2D u_palette;
    out vec3 v_colour;
    void main() {
      vec4 colour = texelFetch(u_palette, ivec2(int(a_code & 255u), int(a_code >> 8u)), 0);
      if (colour.a == 0.0) { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); gl_PointSize = 0.0; return; }
      gl_Position = vec4(a_pos * u_scale + u_offset, 0.0, 1.0);
      gl_PointSize = u_size;
      v_colour = colour.rgb;
    }`;
  const FRAGMENT = `#version 300 es
    precision mediump float;
    in vec3 v_colour;
    uniform bool u_round;
    out vec4 colour;
    void main() {
      vec2 d = gl_PointCoord - 0.5;
      if (u_round && dot(d, d) > 0.25) discard;
      colour = vec4(v_colour, 0.8);
    }`;

  function compile(gl, type, source) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    return shader;
  }

  // A renderer on `canvas`: load(map) uploads the arrays once, palette(rgba: Uint8Array of 256 × rows × 4) sets
  // the colour of each code, draw(view, size, limit) draws the first `limit` points (all by default), finish()
  // waits until the drawing is done; `software` says that WebGL runs without a GPU. null without WebGL2.
  function createRenderer(canvas) {
    const gl = canvas.getContext("webgl2", { antialias: false, alpha: false, depth: false });
    if (!gl) return null;
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const name = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
    const at = (name) => gl.getUniformLocation(program, name);
    const uniforms = { scale: at("u_scale"), offset: at("u_offset"), size: at("u_size"), round: at("u_round"),
      palette: at("u_palette") };
    const vao = gl.createVertexArray();
    const positions = gl.createBuffer();
    const codes = gl.createBuffer();
    const texture = gl.createTexture();
    let map = null;

    return {
      kind: "webgl2",
      background: [255, 255, 255],  // the page's colour behind the points (dark in the dark theme)
      software: /swiftshader|llvmpipe|software/i.test(name),  // no GPU: see createPixelRenderer
      load(next) {
        map = next;
        gl.bindVertexArray(vao);
        gl.bindBuffer(gl.ARRAY_BUFFER, positions);
        gl.bufferData(gl.ARRAY_BUFFER, map.coords, gl.STATIC_DRAW);
        const pos = gl.getAttribLocation(program, "a_pos");
        gl.enableVertexAttribArray(pos);
        gl.vertexAttribPointer(pos, 2, gl.UNSIGNED_SHORT, true, 0, 0);
        gl.bindBuffer(gl.ARRAY_BUFFER, codes);
        gl.bufferData(gl.ARRAY_BUFFER, map.codes, gl.STATIC_DRAW);
        const code = gl.getAttribLocation(program, "a_code");
        gl.enableVertexAttribArray(code);
        gl.vertexAttribIPointer(code, 1, map.codes.BYTES_PER_ELEMENT === 1 ? gl.UNSIGNED_BYTE : gl.UNSIGNED_SHORT,
          0, 0);
        gl.bindVertexArray(null);
      },
      palette(rgba) {
        gl.bindTexture(gl.TEXTURE_2D, texture);
        gl.pixelStorei(gl.UNPACK_ALIGNMENT, 1);
        gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, 256, rgba.length / 1024, 0, gl.RGBA, gl.UNSIGNED_BYTE, rgba);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
        gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
      },
      draw(view, size, limit = Infinity) {
        gl.viewport(0, 0, canvas.width, canvas.height);
        gl.clearColor(this.background[0] / 255, this.background[1] / 255, this.background[2] / 255, 1);
        gl.clear(gl.COLOR_BUFFER_BIT);
        if (!map || !map.count) return;
        const [x0, y0, x1, y1] = map.header.bounds;
        const sx = (x1 - x0) / (view.x[1] - view.x[0]);
        const sy = (y1 - y0) / (view.y[1] - view.y[0]);
        gl.useProgram(program);
        gl.uniform2f(uniforms.scale, 2 * sx, 2 * sy);
        gl.uniform2f(uniforms.offset, 2 * (x0 - view.x[0]) / (view.x[1] - view.x[0]) - 1,
          2 * (y0 - view.y[0]) / (view.y[1] - view.y[0]) - 1);
        gl.uniform1f(uniforms.size, size);
        gl.uniform1i(uniforms.round, size >= 3 ? 1 : 0);
        gl.activeTexture(gl.TEXTURE0);
        gl.bindTexture(gl.TEXTURE_2D, texture);
        gl.uniform1i(uniforms.palette, 0);
        gl.enable(gl.BLEND);
        gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
        gl.bindVertexArray(vao);
        gl.drawArrays(gl.POINTS, 0, Math.min(limit, map.count));
        gl.bindVertexArray(null);
      },
      // Wait until the drawing is done: reading a pixel back does (Chromium's gl.finish() does not wait).
      finish() { gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, new Uint8Array(4)); },
      // How many pixels are not the background, read back right after a draw (the drawing buffer is not kept).
      painted(view, size) {
        this.draw(view, size);
        const pixels = new Uint8Array(canvas.width * canvas.height * 4);
        gl.readPixels(0, 0, canvas.width, canvas.height, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
        const [r, g, b] = this.background;
        const far = (p) => Math.abs(pixels[p] - r) > 5 || Math.abs(pixels[p + 1] - g) > 5 || Math.abs(pixels[p + 2] - b) > 5;
        let n = 0;
        for (let p = 0; p < pixels.length; p += 4) if (far(p)) n += 1;
        return n;
      },
    };
  }

  // An opaque colour as ImageData's four bytes read as one little-endian Uint32 (R, G, B, A in memory).
  const packed = ([r, g, b]) => ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;

  // A CSS colour ("#1b1f27", "rgb(27, 31, 39)") as [r, g, b]; white when it cannot be read.
  function rgbOf(colour) {
    const text = String(colour || "").trim();
    const hex = text.match(/^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i);
    if (hex) return hex.slice(1).map((h) => parseInt(h, 16));
    const rgb = text.match(/^rgba?\((\d+),\s*(\d+),\s*(\d+)/);
    return rgb ? rgb.slice(1).map(Number) : [255, 255, 255];
  }

  // The same without WebGL: each visible point written as a small square straight into the canvas's pixels. Where
  // WebGL is software (no GPU: SwiftShader, llvmpipe) this is the faster way by far: about 0.1 µs a point against
  // about 1 µs (measured in Chromium on 2 cores, bench/RESULTS.md).
  function createPixelRenderer(canvas) {
    const context = canvas.getContext("2d");
    let map = null;
    let colours = new Uint32Array(256);  // packed as ImageData's bytes are (R, G, B, A in memory); 0: hidden
    const renderer = {
      kind: "pixels",
      background: [255, 255, 255],
      load(next) { map = next; },
      palette(rgba) {
        colours = new Uint32Array(rgba.length / 4);
        const bytes = new Uint8Array(colours.buffer);
        for (let c = 0; c < colours.length; c += 1) {
          if (rgba[4 * c + 3]) bytes.set([rgba[4 * c], rgba[4 * c + 1], rgba[4 * c + 2], 255], 4 * c);
        }
      },
      finish() {},
      draw(view, size, limit = Infinity) {
        const w = canvas.width;
        const h = canvas.height;
        const image = context.createImageData(w, h);
        const px = new Uint32Array(image.data.buffer);
        px.fill(packed(renderer.background));
        if (map && map.count) {
          const [x0, y0, x1, y1] = map.header.bounds;
          const ax = ((x1 - x0) / STEPS) / (view.x[1] - view.x[0]) * w;
          const bx = (x0 - view.x[0]) / (view.x[1] - view.x[0]) * w;
          const ay = -((y1 - y0) / STEPS) / (view.y[1] - view.y[0]) * h;
          const by = h - (y0 - view.y[0]) / (view.y[1] - view.y[0]) * h;
          const side = Math.max(1, Math.round(size));
          const back = Math.floor(side / 2);
          const { coords, codes } = map;
          for (let i = 0, n = Math.min(limit, map.count); i < n; i += 1) {
            const colour = colours[codes[i]];
            if (!colour) continue;
            const left = Math.round(coords[2 * i] * ax + bx) - back;
            const top = Math.round(coords[2 * i + 1] * ay + by) - back;
            if (left >= w || top >= h || left + side <= 0 || top + side <= 0) continue;
            for (let y = Math.max(0, top), yEnd = Math.min(h, top + side); y < yEnd; y += 1) {
              const row = y * w;
              for (let x = Math.max(0, left), xEnd = Math.min(w, left + side); x < xEnd; x += 1) px[row + x] = colour;
            }
          }
        }
        context.putImageData(image, 0, 0);
      },
      painted(view, size) {
        renderer.draw(view, size);
        const px = new Uint32Array(context.getImageData(0, 0, canvas.width, canvas.height).data.buffer);
        const back = packed(renderer.background);
        let n = 0;
        for (let p = 0; p < px.length; p += 1) if (px[p] !== back) n += 1;
        return n;
      },
    };
    return renderer;
  }

  return { decode, pointOf, PointIndex, View, createRenderer, createPixelRenderer, STEPS, rgbOf };
})();
