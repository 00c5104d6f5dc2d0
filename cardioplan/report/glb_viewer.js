// CardioPlan minimal glTF (GLB) viewer: WebGL 1, no dependencies, works offline.
// Copyright CardioPlan contributors, Apache-2.0.
//
// Reads the base64 GLB in <script id="cardioplan-glb" type="application/octet-stream">, draws
// every mesh node in its material colour with a head light, and offers orbit (drag), zoom
// (wheel), pan (shift+drag or right drag), view buttons in LPS patient terms (anterior =
// looking from the patient's front, patient's left on the right; mapped into the glTF world by
// the nodes' own transform, using asset.extras.space), a legend with show/hide and opacity per
// structure, and the plan's landmarks and measurements with their labels.  Sets document.body.dataset.ready = "1" after the first frame.
(function () {
  "use strict";

  var VIEWS = {
    // direction from the model to the eye, and view-up, in LPS
    anterior: [[0, -1, 0], [0, 0, 1]],
    posterior: [[0, 1, 0], [0, 0, 1]],
    left: [[1, 0, 0], [0, 0, 1]],
    right: [[-1, 0, 0], [0, 0, 1]],
    superior: [[0, 0, 1], [0, -1, 0]],
    inferior: [[0, 0, -1], [0, -1, 0]],
    lao: [[0.7071, -0.7071, 0], [0, 0, 1]],
    rao: [[-0.5, -0.8660, 0], [0, 0, 1]]
  };

  function fail(msg) {
    var el = document.getElementById("cardioplan-status");
    if (el) { el.textContent = msg; el.style.display = "block"; }
    document.body.dataset.ready = "error";
  }

  // ---------------------------------------------------------------- GLB parsing
  function decodeBase64(text) {
    var bin = atob(text.replace(/\s+/g, ""));
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function parseGlb(buffer) {
    var dv = new DataView(buffer);
    if (dv.getUint32(0, true) !== 0x46546c67) throw new Error("not a GLB file");
    var offset = 12, json = null, bin = null;
    while (offset < buffer.byteLength) {
      var len = dv.getUint32(offset, true), type = dv.getUint32(offset + 4, true);
      var start = offset + 8;
      if (type === 0x4e4f534a) {
        json = JSON.parse(new TextDecoder("utf-8").decode(new Uint8Array(buffer, start, len)));
      } else if (type === 0x004e4942) {
        bin = buffer.slice(start, start + len);
      }
      offset = start + len;
    }
    if (!json || !bin) throw new Error("GLB without JSON or binary chunk");
    return { json: json, bin: bin };
  }

  var COMPONENTS = { SCALAR: 1, VEC2: 2, VEC3: 3, VEC4: 4, MAT4: 16 };
  var TYPES = { 5121: Uint8Array, 5123: Uint16Array, 5125: Uint32Array, 5126: Float32Array };

  function accessor(gltf, index) {
    var acc = gltf.json.accessors[index];
    var view = gltf.json.bufferViews[acc.bufferView];
    var Type = TYPES[acc.componentType];
    var n = acc.count * COMPONENTS[acc.type];
    var byteOffset = (view.byteOffset || 0) + (acc.byteOffset || 0);
    if (view.byteStride && view.byteStride !== COMPONENTS[acc.type] * Type.BYTES_PER_ELEMENT) {
      throw new Error("interleaved buffers are not supported");
    }
    return new Type(gltf.bin.slice(byteOffset, byteOffset + n * Type.BYTES_PER_ELEMENT));
  }

  // ---------------------------------------------------------------- small matrix helpers
  function mat4Identity() { return [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]; }
  function mat4Mul(a, b) { // column-major a*b
    var o = new Array(16);
    for (var c = 0; c < 4; c++) for (var r = 0; r < 4; r++) {
      var s = 0;
      for (var k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      o[c * 4 + r] = s;
    }
    return o;
  }
  function nodeMatrix(node) {
    if (node.matrix) return node.matrix.slice();
    var t = node.translation || [0, 0, 0], q = node.rotation || [0, 0, 0, 1];
    var s = node.scale || [1, 1, 1];
    var x = q[0], y = q[1], z = q[2], w = q[3];
    return [
      (1 - 2 * (y * y + z * z)) * s[0], (2 * (x * y + z * w)) * s[0], (2 * (x * z - y * w)) * s[0], 0,
      (2 * (x * y - z * w)) * s[1], (1 - 2 * (x * x + z * z)) * s[1], (2 * (y * z + x * w)) * s[1], 0,
      (2 * (x * z + y * w)) * s[2], (2 * (y * z - x * w)) * s[2], (1 - 2 * (x * x + y * y)) * s[2], 0,
      t[0], t[1], t[2], 1];
  }
  function transformPoint(m, p) {
    return [m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12],
            m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13],
            m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14]];
  }
  function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
  function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
  function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
  function norm(a) { var l = Math.sqrt(dot(a, a)) || 1; return [a[0] / l, a[1] / l, a[2] / l]; }
  function lookAt(eye, center, up) {
    var f = norm(sub(center, eye)), s = norm(cross(f, up)), u = cross(s, f);
    return [s[0], u[0], -f[0], 0, s[1], u[1], -f[1], 0, s[2], u[2], -f[2], 0,
            -dot(s, eye), -dot(u, eye), dot(f, eye), 1];
  }
  function perspective(fovy, aspect, near, far) {
    var f = 1 / Math.tan(fovy / 2), nf = 1 / (near - far);
    return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0];
  }
  function rotate(v, axis, angle) { // Rodrigues
    var c = Math.cos(angle), s = Math.sin(angle), k = norm(axis), d = dot(k, v), x = cross(k, v);
    return [v[0] * c + x[0] * s + k[0] * d * (1 - c), v[1] * c + x[1] * s + k[1] * d * (1 - c),
            v[2] * c + x[2] * s + k[2] * d * (1 - c)];
  }

  // ---------------------------------------------------------------- WebGL
  var VS = "attribute vec3 aPos; attribute vec3 aNormal; uniform mat4 uModel, uView, uProj;" +
    "varying vec3 vNormal; varying vec3 vPos; varying vec3 vWorld;" +
    "void main(){ vec4 w = uModel * vec4(aPos, 1.0); vWorld = w.xyz; vec4 e = uView * w; vPos = e.xyz;" +
    " vNormal = mat3(uView) * mat3(uModel) * aNormal; gl_Position = uProj * e; }";
  // cut planes: fragments on the negative side of any active plane are discarded; inner
  // surfaces seen through a cut (back faces) are drawn darker, as in the desktop viewer
  var FS = "precision highp float; uniform vec4 uColor; uniform vec4 uPlanes[4]; uniform float uNPlanes;" +
    "varying vec3 vNormal; varying vec3 vPos; varying vec3 vWorld;" +
    "void main(){ for (int i = 0; i < 4; i++) { if (float(i) < uNPlanes &&" +
    " dot(vec4(vWorld, 1.0), uPlanes[i]) < 0.0) discard; }" +
    " vec3 n = normalize(vNormal); vec3 v = normalize(-vPos);" +
    " float d = abs(dot(n, v)); float sp = pow(d, 30.0);" +
    " vec3 c = uColor.rgb * (0.25 + 0.75 * d) + vec3(0.18) * sp;" +
    " if (!gl_FrontFacing) c *= 0.5; gl_FragColor = vec4(c, uColor.a); }";

  // annotations (landmarks, measurement lines): flat colour, always on top
  var AVS = "attribute vec3 aPos; uniform mat4 uMVP; void main(){ gl_Position = uMVP * vec4(aPos, 1.0);" +
    " gl_PointSize = 9.0; }";
  var AFS = "precision mediump float; uniform vec4 uColor; void main(){ gl_FragColor = uColor; }";

  function shader(gl, type, src) {
    var s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
    return s;
  }

  function start() {
    var canvas = document.getElementById("cardioplan-canvas");
    var gl = canvas.getContext("webgl", { preserveDrawingBuffer: true, antialias: true }) ||
             canvas.getContext("experimental-webgl", { preserveDrawingBuffer: true });
    if (!gl) { fail("This browser cannot show 3D (WebGL is off). The report's pictures still work."); return; }
    var uint32 = gl.getExtension("OES_element_index_uint");
    var prog = gl.createProgram();
    gl.attachShader(prog, shader(gl, gl.VERTEX_SHADER, VS));
    gl.attachShader(prog, shader(gl, gl.FRAGMENT_SHADER, FS));
    gl.linkProgram(prog);
    gl.useProgram(prog);
    var loc = {
      pos: gl.getAttribLocation(prog, "aPos"), normal: gl.getAttribLocation(prog, "aNormal"),
      model: gl.getUniformLocation(prog, "uModel"), view: gl.getUniformLocation(prog, "uView"),
      proj: gl.getUniformLocation(prog, "uProj"), color: gl.getUniformLocation(prog, "uColor"),
      planes: gl.getUniformLocation(prog, "uPlanes"), nplanes: gl.getUniformLocation(prog, "uNPlanes")
    };

    var gltf = parseGlb(decodeBase64(document.getElementById("cardioplan-glb").textContent));
    var names = (gltf.json.asset && gltf.json.asset.extras && gltf.json.asset.extras.structures) || {};
    var items = [], lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];

    function visit(index, parent) {
      var node = gltf.json.nodes[index], m = mat4Mul(parent, nodeMatrix(node));
      if (node.mesh !== undefined) {
        gltf.json.meshes[node.mesh].primitives.forEach(function (prim) {
          var pos = accessor(gltf, prim.attributes.POSITION);
          var nrm = prim.attributes.NORMAL !== undefined ? accessor(gltf, prim.attributes.NORMAL) : null;
          var idx = accessor(gltf, prim.indices);
          if (idx instanceof Uint32Array && !uint32) throw new Error("the browser lacks 32-bit indices");
          var mat = prim.material !== undefined ? gltf.json.materials[prim.material] : {};
          var pbr = mat.pbrMetallicRoughness || {};
          var color = pbr.baseColorFactor || [0.8, 0.8, 0.8, 1];
          if (color[0] > 1 || color[1] > 1 || color[2] > 1) color = color.map(function (c) { return c / 255; });
          for (var i = 0; i < pos.length; i += 3) {
            var p = transformPoint(m, [pos[i], pos[i + 1], pos[i + 2]]);
            for (var k = 0; k < 3; k++) { lo[k] = Math.min(lo[k], p[k]); hi[k] = Math.max(hi[k], p[k]); }
          }
          var item = {
            name: node.name || ("mesh " + node.mesh), model: m, count: idx.length,
            type: idx instanceof Uint32Array ? gl.UNSIGNED_INT : (idx instanceof Uint16Array ? gl.UNSIGNED_SHORT : gl.UNSIGNED_BYTE),
            color: [color[0], color[1], color[2]], opacity: 1.0, visible: true,
            pos: gl.createBuffer(), normal: gl.createBuffer(), index: gl.createBuffer(), hasNormal: !!nrm
          };
          gl.bindBuffer(gl.ARRAY_BUFFER, item.pos);
          gl.bufferData(gl.ARRAY_BUFFER, pos, gl.STATIC_DRAW);
          if (nrm) { gl.bindBuffer(gl.ARRAY_BUFFER, item.normal); gl.bufferData(gl.ARRAY_BUFFER, nrm, gl.STATIC_DRAW); }
          gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, item.index);
          gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, idx, gl.STATIC_DRAW);
          items.push(item);
        });
      }
      (node.children || []).forEach(function (c) { visit(c, m); });
    }
    var scene = gltf.json.scenes[gltf.json.scene || 0];
    scene.nodes.forEach(function (n) { visit(n, mat4Identity()); });
    if (!items.length) throw new Error("the model has no meshes");

    // -- plan annotations (LPS mm, transformed like the meshes: one node transform for all)
    var annEl = document.getElementById("cardioplan-annotations");
    var ann = annEl ? JSON.parse(annEl.textContent) : { landmarks: [], measurements: [] };
    var annModel = items[0].model;
    var aprog = gl.createProgram();
    gl.attachShader(aprog, shader(gl, gl.VERTEX_SHADER, AVS));
    gl.attachShader(aprog, shader(gl, gl.FRAGMENT_SHADER, AFS));
    gl.linkProgram(aprog);
    var aloc = { pos: gl.getAttribLocation(aprog, "aPos"), mvp: gl.getUniformLocation(aprog, "uMVP"),
                 color: gl.getUniformLocation(aprog, "uColor") };
    function buffer(points) {
      var b = gl.createBuffer(), flat = [];
      points.forEach(function (p) { var q = transformPoint(annModel, p); flat.push(q[0], q[1], q[2]); });
      gl.bindBuffer(gl.ARRAY_BUFFER, b);
      gl.bufferData(gl.ARRAY_BUFFER, new Float32Array(flat), gl.STATIC_DRAW);
      return { buf: b, n: points.length };
    }
    var landmarkPts = buffer(ann.landmarks.map(function (l) { return l.point; }));
    var segs = [];
    ann.measurements.forEach(function (m) {
      for (var i = 0; i + 1 < m.points.length; i++) segs.push(m.points[i], m.points[i + 1]);
    });
    var measureLines = buffer(segs);
    var measurePts = buffer([].concat.apply([], ann.measurements.map(function (m) { return m.points; })));
    var labels = [];
    var overlay = document.getElementById("cardioplan-labels");
    function addLabel(text, point, cls) {
      var el = document.createElement("div");
      el.className = "ann " + cls; el.textContent = text;
      overlay.appendChild(el);
      labels.push({ el: el, p: transformPoint(annModel, point) });
    }
    ann.landmarks.forEach(function (l) { addLabel(l.name, l.point, "landmark"); });
    ann.measurements.forEach(function (m) {
      var p = m.points.length === 3 ? m.points[1] : [0, 1, 2].map(function (k) { return (m.points[0][k] + m.points[1][k]) / 2; });
      addLabel(m.label, p, "measure");
    });
    var showAnn = true;
    var annBox = document.getElementById("cardioplan-show-annotations");
    if (annBox) {
      if (!labels.length) annBox.parentNode.style.display = "none";
      annBox.onchange = function () { showAnn = annBox.checked; overlay.style.display = showAnn ? "" : "none"; draw(); };
    }

    var center = [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2];
    var radius = Math.sqrt(dot(sub(hi, lo), sub(hi, lo))) / 2 || 1;
    var cam = { dir: [0, -1, 0], up: [0, 0, 1], dist: radius / Math.sin(Math.PI / 12) * 1.05, pan: [0, 0, 0] };

    // Views are defined in patient (LPS) terms; the GLB's nodes map patient millimetres into
    // the glTF world (CardioPlan writes +Y superior, +Z anterior), so patient directions go
    // through the same rotation as the meshes.
    var extras = (gltf.json.asset && gltf.json.asset.extras) || {};
    function toWorld(v) {
      var s = String(extras.space || "LPS").toUpperCase() === "RAS" ? [-v[0], -v[1], v[2]] : v;
      var m = annModel;
      return norm([m[0] * s[0] + m[4] * s[1] + m[8] * s[2],
                   m[1] * s[0] + m[5] * s[1] + m[9] * s[2],
                   m[2] * s[0] + m[6] * s[1] + m[10] * s[2]]);
    }

    // -- cut planes: the plan's (LPS origin + normal, kept side = where the normal points) and
    //    one interactive plane across the model
    function worldPlane(origin, normal) {
      var n = toWorld(normal), p = transformPoint(annModel, origin);
      return [n[0], n[1], n[2], -dot(n, p)];
    }
    var planPlanes = (ann.cut_planes || []).filter(function (c) { return c.enabled; }).map(function (c) {
      return { plane: worldPlane(c.origin, c.normal), structures: c.structures };
    });
    var usePlanPlanes = true, userCut = null;
    var lpsCenter = null;  // centre of the model in LPS mm, for the interactive cut
    (function () {
      // invert the (rotation x scale) node transform on the world centre
      var m = annModel, c = [center[0] - m[12], center[1] - m[13], center[2] - m[14]];
      var sc = Math.sqrt(m[0] * m[0] + m[1] * m[1] + m[2] * m[2]) || 1;
      var v = [(m[0] * c[0] + m[1] * c[1] + m[2] * c[2]) / (sc * sc),
               (m[4] * c[0] + m[5] * c[1] + m[6] * c[2]) / (sc * sc),
               (m[8] * c[0] + m[9] * c[1] + m[10] * c[2]) / (sc * sc)];
      lpsCenter = String(extras.space || "LPS").toUpperCase() === "RAS" ? [-v[0], -v[1], v[2]] : v;
    })();
    function planesFor(it) {
      var out = [];
      if (usePlanPlanes) planPlanes.forEach(function (c) {
        if (!c.structures.length || c.structures.indexOf(it.name) >= 0) out.push(c.plane);
      });
      if (userCut) out.push(userCut);
      return out.slice(0, 4);
    }
    var cutAxis = document.getElementById("cardioplan-cut-axis");
    var cutPos = document.getElementById("cardioplan-cut-position");
    var cutFlip = document.getElementById("cardioplan-cut-flip");
    var planBox = document.getElementById("cardioplan-plan-cuts");
    function updateCut() {
      var axis = cutAxis ? cutAxis.value : "off";
      if (axis === "off") { userCut = null; draw(); return; }
      var normal = { sagittal: [1, 0, 0], coronal: [0, -1, 0], axial: [0, 0, 1] }[axis];
      if (cutFlip && cutFlip.checked) normal = normal.map(function (x) { return -x; });
      var t = (Number(cutPos.value) - 50) / 50;  // -1..1 across the model
      var r = radius / Math.sqrt(dot(annModel.slice(0, 3), annModel.slice(0, 3)) || 1);
      var origin = [0, 1, 2].map(function (k) { return lpsCenter[k] + normal[k] * t * r * 0.9; });
      userCut = worldPlane(origin, normal);
      draw();
    }
    [cutAxis, cutPos, cutFlip].forEach(function (el) { if (el) el.oninput = el.onchange = updateCut; });
    if (planBox) {
      if (!planPlanes.length) planBox.parentNode.style.display = "none";
      planBox.onchange = function () { usePlanPlanes = planBox.checked; draw(); };
    }

    function setView(name) {
      var v = VIEWS[name];
      cam.dir = toWorld(v[0]); cam.up = toWorld(v[1]); cam.pan = [0, 0, 0];
      cam.dist = radius / Math.sin(Math.PI / 12) * 1.05;
      draw();
    }

    function draw() {
      var w = canvas.clientWidth, h = canvas.clientHeight;
      if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
      gl.viewport(0, 0, canvas.width, canvas.height);
      gl.clearColor(0.10, 0.11, 0.13, 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.enable(gl.DEPTH_TEST);
      var target = [center[0] + cam.pan[0], center[1] + cam.pan[1], center[2] + cam.pan[2]];
      var eye = [target[0] + cam.dir[0] * cam.dist, target[1] + cam.dir[1] * cam.dist, target[2] + cam.dir[2] * cam.dist];
      gl.uniformMatrix4fv(loc.view, false, new Float32Array(lookAt(eye, target, cam.up)));
      gl.uniformMatrix4fv(loc.proj, false, new Float32Array(perspective(Math.PI / 6, canvas.width / Math.max(canvas.height, 1),
        Math.max(cam.dist - 2 * radius, radius * 0.01), cam.dist + 2 * radius)));
      var opaque = items.filter(function (it) { return it.visible && it.opacity >= 0.999; });
      var clear = items.filter(function (it) { return it.visible && it.opacity < 0.999 && it.opacity > 0; });
      gl.disable(gl.BLEND); gl.depthMask(true);
      opaque.forEach(drawItem);
      gl.enable(gl.BLEND); gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA); gl.depthMask(false);
      clear.forEach(drawItem);
      gl.depthMask(true);
      var viewM = lookAt(eye, target, cam.up);
      var projM = perspective(Math.PI / 6, canvas.width / Math.max(canvas.height, 1),
        Math.max(cam.dist - 2 * radius, radius * 0.01), cam.dist + 2 * radius);
      if (showAnn && labels.length) drawAnnotations(mat4Mul(projM, viewM));
      document.body.dataset.ready = "1";
    }

    function drawAnnotations(mvp) {
      gl.useProgram(aprog);
      gl.disable(gl.DEPTH_TEST); gl.disable(gl.BLEND);
      gl.uniformMatrix4fv(aloc.mvp, false, new Float32Array(mvp));
      gl.disableVertexAttribArray(loc.normal);
      [[measureLines, gl.LINES, [1, 1, 1, 1]], [measurePts, gl.POINTS, [1, 1, 1, 1]],
       [landmarkPts, gl.POINTS, [1, 0.92, 0.2, 1]]].forEach(function (d) {
        if (!d[0].n) return;
        gl.bindBuffer(gl.ARRAY_BUFFER, d[0].buf);
        gl.enableVertexAttribArray(aloc.pos);
        gl.vertexAttribPointer(aloc.pos, 3, gl.FLOAT, false, 0, 0);
        gl.uniform4f(aloc.color, d[2][0], d[2][1], d[2][2], d[2][3]);
        gl.drawArrays(d[1], 0, d[0].n);
      });
      gl.enable(gl.DEPTH_TEST);
      gl.useProgram(prog);
      labels.forEach(function (l) {
        var p = l.p, c = [0, 1, 2, 3].map(function (r) { return mvp[r] * p[0] + mvp[4 + r] * p[1] + mvp[8 + r] * p[2] + mvp[12 + r]; });
        if (c[3] <= 0) { l.el.style.display = "none"; return; }
        l.el.style.display = "";
        l.el.style.left = ((c[0] / c[3] + 1) / 2 * canvas.clientWidth + 8) + "px";
        l.el.style.top = ((1 - c[1] / c[3]) / 2 * canvas.clientHeight - 8) + "px";
      });
    }

    function drawItem(it) {
      var planes = planesFor(it), flat = new Float32Array(16);
      planes.forEach(function (p, i) { flat.set(p, 4 * i); });
      gl.uniform4fv(loc.planes, flat);
      gl.uniform1f(loc.nplanes, planes.length);
      gl.uniformMatrix4fv(loc.model, false, new Float32Array(it.model));
      gl.uniform4f(loc.color, it.color[0], it.color[1], it.color[2], it.opacity);
      gl.bindBuffer(gl.ARRAY_BUFFER, it.pos);
      gl.enableVertexAttribArray(loc.pos);
      gl.vertexAttribPointer(loc.pos, 3, gl.FLOAT, false, 0, 0);
      if (it.hasNormal) {
        gl.bindBuffer(gl.ARRAY_BUFFER, it.normal);
        gl.enableVertexAttribArray(loc.normal);
        gl.vertexAttribPointer(loc.normal, 3, gl.FLOAT, false, 0, 0);
      } else {
        gl.disableVertexAttribArray(loc.normal);
        gl.vertexAttrib3f(loc.normal, 0, 0, 1);
      }
      gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, it.index);
      gl.drawElements(gl.TRIANGLES, it.count, it.type, 0);
    }

    // -- legend
    var legend = document.getElementById("cardioplan-legend");
    items.forEach(function (it) {
      var row = document.createElement("label");
      var box = document.createElement("input");
      box.type = "checkbox"; box.checked = true;
      box.onchange = function () { it.visible = box.checked; draw(); };
      var sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = "rgb(" + it.color.map(function (c) { return Math.round(c * 255); }).join(",") + ")";
      var text = document.createElement("span");
      text.textContent = names[it.name] || it.name;
      var op = document.createElement("input");
      op.type = "range"; op.min = 0; op.max = 100; op.value = 100; op.title = "opacity";
      op.oninput = function () { it.opacity = op.value / 100; draw(); };
      row.appendChild(box); row.appendChild(sw); row.appendChild(text); row.appendChild(op);
      legend.appendChild(row);
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-view]"), function (b) {
      b.onclick = function () { setView(b.getAttribute("data-view")); };
    });

    // -- mouse: drag = orbit about the view-up and the screen's horizontal axis, shift = pan
    var drag = null;
    canvas.addEventListener("mousedown", function (e) { drag = { x: e.clientX, y: e.clientY, pan: e.shiftKey || e.button === 2 }; e.preventDefault(); });
    canvas.addEventListener("contextmenu", function (e) { e.preventDefault(); });
    window.addEventListener("mouseup", function () { drag = null; });
    window.addEventListener("mousemove", function (e) {
      if (!drag) return;
      var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      drag.x = e.clientX; drag.y = e.clientY;
      var right = norm(cross(cam.up, cam.dir));
      if (drag.pan) {
        var k = cam.dist * 0.002;
        for (var i = 0; i < 3; i++) cam.pan[i] += (-right[i] * dx + cam.up[i] * dy) * k * -1;
      } else {
        cam.dir = norm(rotate(cam.dir, cam.up, -dx * 0.01));
        var r2 = norm(cross(cam.up, cam.dir));
        cam.dir = norm(rotate(cam.dir, r2, dy * 0.01));
        cam.up = norm(cross(cam.dir, r2));
      }
      draw();
    });
    canvas.addEventListener("wheel", function (e) {
      cam.dist *= Math.exp(e.deltaY * 0.001);
      e.preventDefault(); draw();
    }, { passive: false });
    canvas.addEventListener("dblclick", function () { setView("anterior"); });
    window.addEventListener("resize", draw);
    // a link can open a given view and cut: model.html#view=lao&cut=coronal:40&flip=1
    var params = {};
    String(window.location.hash || "").replace(/^#/, "").split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i > 0) params[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    });
    if (params.cut && cutAxis) {
      var parts = params.cut.split(":");
      cutAxis.value = parts[0];
      if (parts.length > 1) cutPos.value = parts[1];
      if (cutFlip) cutFlip.checked = params.flip === "1";
      updateCut();
    }
    if (params.plancuts === "0" && planBox) { planBox.checked = false; usePlanPlanes = false; }
    setView(VIEWS[params.view] ? params.view :
            (document.body.getAttribute("data-initial-view") || "anterior"));
  }

  try { start(); } catch (err) { fail("The 3D model could not be shown: " + err.message); }
})();
