// A QR code encoder written from ISO/IEC 18004:2015 (model 2 symbols, byte mode only) and an SVG
// renderer for it. It shows the 74-byte scannable safety number (PROTOCOL.md §8), which is binary
// and so always needs byte mode; with level M it fits version 5 (37 × 37 modules). Section
// numbers in the comments are the standard's.

// The standard's tables (7.5.1 Table 9, Annex E Table E.1), indexed by version - 1. The block
// structure is not stored: with the total codeword count of a version (from its function
// patterns) and these two numbers, the sizes of the short and long blocks follow (7.5.2).
const eccCodewordsPerBlock = {
  L: [7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28,
    28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
  M: [10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
    26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28],
  Q: [13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30,
    28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
  H: [17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28,
    30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30],
};
const errorCorrectionBlocks = {
  L: [1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8,
    8, 9, 9, 10, 12, 12, 12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25],
  M: [1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
    17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49],
  Q: [1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20,
    23, 23, 25, 27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68],
  H: [1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25,
    25, 34, 30, 32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81],
};

// The level's two bits in the format information are not in L, M, Q, H order (7.9.1 Table 12).
const formatLevelBits = { L: 0b01, M: 0b00, Q: 0b11, H: 0b10 };

// Row/column coordinates of the alignment pattern centres (Annex E Table E.1), indexed by
// version - 1. The table is kept rather than a formula: it is what the standard defines.
const alignmentCentres = [
  [], [6, 18], [6, 22], [6, 26], [6, 30], [6, 34],
  [6, 22, 38], [6, 24, 42], [6, 26, 46], [6, 28, 50], [6, 30, 54], [6, 32, 58], [6, 34, 62],
  [6, 26, 46, 66], [6, 26, 48, 70], [6, 26, 50, 74], [6, 30, 54, 78], [6, 30, 56, 82],
  [6, 30, 58, 86], [6, 34, 62, 90],
  [6, 28, 50, 72, 94], [6, 26, 50, 74, 98], [6, 30, 54, 78, 102], [6, 28, 54, 80, 106],
  [6, 32, 58, 84, 110], [6, 30, 58, 86, 114], [6, 34, 62, 90, 118],
  [6, 26, 50, 74, 98, 122], [6, 30, 54, 78, 102, 126], [6, 26, 52, 78, 104, 130],
  [6, 30, 56, 82, 108, 134], [6, 34, 60, 86, 112, 138], [6, 30, 58, 86, 114, 142],
  [6, 34, 62, 90, 118, 146],
  [6, 30, 54, 78, 102, 126, 150], [6, 24, 50, 76, 102, 128, 154], [6, 28, 54, 80, 106, 132, 158],
  [6, 32, 58, 84, 110, 136, 162], [6, 26, 54, 82, 110, 138, 166], [6, 30, 58, 86, 114, 142, 170],
];

// Data mask conditions (7.8.2 Table 10), i = row, j = column; a module is inverted where true.
const maskConditions = [
  (i, j) => (i + j) % 2 === 0,
  (i) => i % 2 === 0,
  (i, j) => j % 3 === 0,
  (i, j) => (i + j) % 3 === 0,
  (i, j) => (Math.floor(i / 2) + Math.floor(j / 3)) % 2 === 0,
  (i, j) => ((i * j) % 2) + ((i * j) % 3) === 0,
  (i, j) => (((i * j) % 2) + ((i * j) % 3)) % 2 === 0,
  (i, j) => (((i + j) % 2) + ((i * j) % 3)) % 2 === 0,
];

// ---------------------------------------------------------------------------------------------
// GF(256) with the QR code's primitive polynomial x⁸ + x⁴ + x³ + x² + 1 (7.5.2), as log and
// antilog tables; the antilog table is doubled so a product never needs a mod 255.

const gfExp = new Uint8Array(512);
const gfLog = new Uint8Array(256);
{
  let value = 1;
  for (let power = 0; power < 255; power++) {
    gfExp[power] = value;
    gfLog[value] = power;
    value <<= 1;
    if (value & 0x100) value ^= 0x11d;
  }
  for (let power = 255; power < 512; power++) gfExp[power] = gfExp[power - 255];
}

function gfMultiply(a, b) {
  return a === 0 || b === 0 ? 0 : gfExp[gfLog[a] + gfLog[b]];
}

// The generator polynomial (x - α⁰)(x - α¹)…(x - αⁿ⁻¹), coefficients from the highest degree
// down; its leading coefficient is 1. Subtraction is XOR in GF(2⁸), so each factor is x + αⁱ.
const generatorCache = new Map();
function generatorPolynomial(degree) {
  let polynomial = generatorCache.get(degree);
  if (polynomial) return polynomial;
  polynomial = new Uint8Array([1]);
  for (let i = 0; i < degree; i++) {
    const next = new Uint8Array(polynomial.length + 1);
    for (let k = 0; k < polynomial.length; k++) {
      next[k] ^= polynomial[k];
      next[k + 1] ^= gfMultiply(polynomial[k], gfExp[i]);
    }
    polynomial = next;
  }
  generatorCache.set(degree, polynomial);
  return polynomial;
}

// The error correction codewords are the remainder of data(x)·xⁿ divided by the generator,
// computed as a shift register so the product polynomial is never materialised.
function reedSolomonRemainder(data, degree) {
  const generator = generatorPolynomial(degree);
  const remainder = new Uint8Array(degree);
  for (const byte of data) {
    const factor = byte ^ remainder[0];
    remainder.copyWithin(0, 1);
    remainder[degree - 1] = 0;
    for (let k = 0; k < degree; k++) remainder[k] ^= gfMultiply(generator[k + 1], factor);
  }
  return remainder;
}

// The remainder of value·x^(degree of generator) modulo generator over GF(2), for the BCH codes
// that protect the format (7.9.1) and version (7.10) information.
function bchRemainder(value, generator) {
  const bitLength = (x) => 32 - Math.clz32(x);
  const degree = bitLength(generator) - 1;
  let remainder = value << degree;
  while (bitLength(remainder) > degree) remainder ^= generator << (bitLength(remainder) - bitLength(generator));
  return remainder;
}

// ---------------------------------------------------------------------------------------------
// Symbol layout (6.3). A template per version holds the function patterns, which no mask
// touches, and marks every module that is not free for data; the data capacity of a version is
// simply what is left.

// Where the 15 format bits go (7.9.1, Figure 25), bit 0 being the least significant: one copy
// around the upper left finder pattern, the other split between the upper right and lower left.
function formatPositions(size) {
  const first = [];
  const second = [];
  for (let bit = 0; bit < 15; bit++) {
    if (bit < 6) first.push([bit, 8]);
    else if (bit < 8) first.push([bit + 1, 8]); // skips the horizontal timing pattern in row 6
    else if (bit === 8) first.push([8, 7]);
    else first.push([8, 14 - bit]);
    second.push(bit < 8 ? [8, size - 1 - bit] : [size - 15 + bit, 8]);
  }
  return [first, second];
}

const templateCache = new Map();
function template(version) {
  let cached = templateCache.get(version);
  if (cached) return cached;

  const size = 4 * version + 17;
  const dark = new Uint8Array(size * size);
  const reserved = new Uint8Array(size * size);
  const put = (row, column, isDark) => {
    reserved[row * size + column] = 1;
    dark[row * size + column] = isDark ? 1 : 0;
  };

  // Finder patterns with their light separators (6.3.3, 6.3.4): concentric squares by distance
  // from the centre: 0–1 dark core, 2 light, 3 dark border, 4 separator.
  for (const [top, left] of [[0, 0], [0, size - 7], [size - 7, 0]]) {
    for (let dr = -1; dr <= 7; dr++) {
      for (let dc = -1; dc <= 7; dc++) {
        const row = top + dr;
        const column = left + dc;
        if (row < 0 || column < 0 || row >= size || column >= size) continue;
        const ring = Math.max(Math.abs(dr - 3), Math.abs(dc - 3));
        put(row, column, ring !== 2 && ring !== 4);
      }
    }
  }

  // Timing patterns (6.3.5) alternate starting dark, so module k is dark for even k.
  for (let k = 8; k < size - 8; k++) {
    put(6, k, k % 2 === 0);
    put(k, 6, k % 2 === 0);
  }

  // Alignment patterns (6.3.6) at every pair of centres except the three that would overlap a
  // finder pattern. Where one crosses a timing pattern the two agree, so the order is irrelevant.
  const centres = alignmentCentres[version - 1];
  const last = centres.length - 1;
  centres.forEach((row, a) => centres.forEach((column, b) => {
    if ((a === 0 && b === 0) || (a === 0 && b === last) || (a === last && b === 0)) return;
    for (let dr = -2; dr <= 2; dr++) {
      for (let dc = -2; dc <= 2; dc++) put(row + dr, column + dc, Math.max(Math.abs(dr), Math.abs(dc)) !== 1);
    }
  }));

  // The format areas are drawn per mask later; reserve them now so no data lands there.
  for (const copy of formatPositions(size)) for (const [row, column] of copy) put(row, column, false);
  // The single dark module beside the lower left format copy (7.9.1).
  put(size - 8, 8, true);

  // Version information (7.10), from version 7: 6 bits of version and 12 of BCH(18, 6), in a
  // 6 × 3 block left of the upper right finder and its transpose above the lower left one.
  if (version >= 7) {
    const bits = (version << 12) | bchRemainder(version, 0x1f25);
    for (let bit = 0; bit < 18; bit++) {
      const isDark = ((bits >>> bit) & 1) === 1;
      const near = Math.floor(bit / 3);
      const far = size - 11 + (bit % 3);
      put(near, far, isDark);
      put(far, near, isDark);
    }
  }

  let dataModules = 0;
  for (const flag of reserved) if (flag === 0) dataModules++;
  cached = { size, dark, reserved, totalCodewords: Math.floor(dataModules / 8) };
  templateCache.set(version, cached);
  return cached;
}

function dataCodewordCount(version, level) {
  const { totalCodewords } = template(version);
  return totalCodewords - eccCodewordsPerBlock[level][version - 1] * errorCorrectionBlocks[level][version - 1];
}

// Byte mode's character count indicator grows from 8 to 16 bits at version 10 (7.4.1 Table 3).
function countBits(version) {
  return version <= 9 ? 8 : 16;
}

function fits(length, version, level) {
  return length < 2 ** countBits(version) && 4 + countBits(version) + 8 * length <= 8 * dataCodewordCount(version, level);
}

// ---------------------------------------------------------------------------------------------
// Encoding (7.4 data, 7.5 error correction, 7.6 interleaving).

function dataCodewords(bytes, version, level) {
  const capacity = dataCodewordCount(version, level);
  const out = new Uint8Array(capacity);
  let bitCount = 0;
  const write = (value, width) => {
    for (let bit = width - 1; bit >= 0; bit--, bitCount++) {
      if ((value >>> bit) & 1) out[bitCount >>> 3] |= 0x80 >>> (bitCount & 7);
    }
  };
  write(0b0100, 4); // byte mode indicator
  write(bytes.length, countBits(version));
  for (const byte of bytes) write(byte, 8);
  // The terminator (up to four zero bits) and the padding to a whole byte are zeros already, so
  // only the pad codewords remain: 11101100 and 00010001 alternating (7.4.10).
  let next = Math.ceil((bitCount + Math.min(4, 8 * capacity - bitCount)) / 8);
  for (let pad = 0; next < capacity; next++, pad ^= 1) out[next] = pad === 0 ? 0xec : 0x11;
  return out;
}

function finalCodewords(data, version, level) {
  const { totalCodewords } = template(version);
  const blockCount = errorCorrectionBlocks[level][version - 1];
  const eccLength = eccCodewordsPerBlock[level][version - 1];
  // Blocks differ in length by at most one data codeword, the longer ones last (7.5.2).
  const longBlocks = totalCodewords % blockCount;
  const shortDataLength = Math.floor(totalCodewords / blockCount) - eccLength;
  const blocks = [];
  let offset = 0;
  for (let b = 0; b < blockCount; b++) {
    const length = shortDataLength + (b >= blockCount - longBlocks ? 1 : 0);
    const blockData = data.subarray(offset, offset + length);
    blocks.push({ data: blockData, ecc: reedSolomonRemainder(blockData, eccLength) });
    offset += length;
  }
  // Interleave codeword by codeword across the blocks, all data first, then all ECC (7.6).
  const out = [];
  for (let k = 0; k <= shortDataLength; k++) for (const block of blocks) if (k < block.data.length) out.push(block.data[k]);
  for (let k = 0; k < eccLength; k++) for (const block of blocks) out.push(block.ecc[k]);
  return out;
}

// Codeword bits go in two-module-wide columns from the right edge, upwards then downwards in
// turn, right module before left (7.7.3). The vertical timing pattern makes column 6 skip to
// the left. Modules left over after the last codeword are remainder bits, zero (7.6).
function placeData(codewords, { size, dark, reserved }) {
  const modules = dark.slice();
  let bit = 0;
  const totalBits = codewords.length * 8;
  let upward = true;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5;
    for (let step = 0; step < size; step++) {
      const row = upward ? size - 1 - step : step;
      for (const column of [right, right - 1]) {
        const index = row * size + column;
        if (reserved[index]) continue;
        if (bit < totalBits) modules[index] = (codewords[bit >>> 3] >>> (7 - (bit & 7))) & 1;
        bit++;
      }
    }
    upward = !upward;
  }
  return modules;
}

function applyMask(unmasked, { size, reserved }, mask, level) {
  const modules = unmasked.slice();
  const condition = maskConditions[mask];
  for (let row = 0; row < size; row++) {
    for (let column = 0; column < size; column++) {
      const index = row * size + column;
      if (!reserved[index] && condition(row, column)) modules[index] ^= 1;
    }
  }
  // Format information: level and mask, BCH(15, 5), then XOR with 101010000010010 so that it is
  // never all zeros (7.9.1).
  const data = (formatLevelBits[level] << 3) | mask;
  const bits = ((data << 10) | bchRemainder(data, 0x537)) ^ 0x5412;
  for (const copy of formatPositions(size)) {
    copy.forEach(([row, column], bit) => { modules[row * size + column] = (bits >>> bit) & 1; });
  }
  return modules;
}

// ---------------------------------------------------------------------------------------------
// Mask evaluation (7.8.3.1, Table 11): N1 = 3, N2 = 3, N3 = 40, N4 = 10. The 2015 edition
// evaluates "the complete symbol", so each candidate is scored with its format information,
// the version information and the dark module drawn. Encoders that score before drawing them
// (segno among them) sometimes pick another mask for the same data; any mask decodes, the choice
// only affects how easy the symbol is to read.

// The 1:1:3:1:1 finder-like pattern. It scores when a light area 4 modules wide (Table 11; its
// note says "more than 4", the table is taken) precedes or follows it, once even when both do.
// Past the edge lies the quiet zone, which is light. Every occurrence counts, including one
// that shares modules with the previous: the pattern overlaps itself at shifts of 4 and 6, and
// a data pattern abutting a real finder pattern is exactly what a reader could mistake.
const finderLike = [1, 0, 1, 1, 1, 0, 1];

function penalty(modules, size) {
  let score = 0;
  for (let line = 0; line < size; line++) {
    for (const horizontal of [true, false]) {
      const at = horizontal ? (k) => modules[line * size + k] : (k) => modules[k * size + line];
      const lightFrom = (start) => {
        for (let k = start; k < start + 4; k++) if (k >= 0 && k < size && at(k) === 1) return false;
        return true;
      };
      // N1: each run of five or more same-coloured modules, 3 plus one per module beyond five.
      let run = 1;
      for (let k = 1; k <= size; k++) {
        if (k < size && at(k) === at(k - 1)) { run++; continue; }
        if (run >= 5) score += 3 + (run - 5);
        run = 1;
      }
      // N3.
      for (let k = 0; k + 7 <= size; k++) {
        if (finderLike.every((value, offset) => at(k + offset) === value) && (lightFrom(k - 4) || lightFrom(k + 7))) score += 40;
      }
    }
  }
  // N2: each 2 × 2 block of one colour, overlapping blocks counted separately.
  for (let row = 0; row + 1 < size; row++) {
    for (let column = 0; column + 1 < size; column++) {
      const index = row * size + column;
      const value = modules[index];
      if (modules[index + 1] === value && modules[index + size] === value && modules[index + size + 1] === value) score += 3;
    }
  }
  // N4: 10 for each full 5% step that the dark proportion lies away from 50%.
  let darkCount = 0;
  for (const value of modules) darkCount += value;
  const total = size * size;
  score += 10 * Math.floor(Math.abs(20 * darkCount - 10 * total) / total);
  return score;
}

// ---------------------------------------------------------------------------------------------

/**
 * Encodes bytes as a QR code in byte mode.
 *
 * `errorCorrection` is 'L', 'M', 'Q' or 'H'. The smallest version (1–40) that holds the bytes at
 * that level is used, unless `version` fixes one; the mask is the one with the lowest penalty
 * (ties to the lower number), unless `mask` (0–7) fixes it. Returns `{ version, size, mask,
 * errorCorrection, modules }`, where `modules` is `size` rows of `size` booleans, true = dark,
 * without the quiet zone.
 */
export function encodeQR(bytes, { errorCorrection = 'M', version, mask } = {}) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('encodeQR takes a Uint8Array');
  if (!Object.hasOwn(formatLevelBits, errorCorrection)) throw new RangeError(`unknown error correction level ${errorCorrection}`);
  const level = errorCorrection;
  if (version === undefined) {
    version = 1;
    while (version <= 40 && !fits(bytes.length, version, level)) version++;
    if (version > 40) throw new RangeError(`${bytes.length} bytes do not fit a QR code at level ${level}`);
  } else {
    if (!Number.isInteger(version) || version < 1 || version > 40) throw new RangeError(`no QR code version ${version}`);
    if (!fits(bytes.length, version, level)) throw new RangeError(`${bytes.length} bytes do not fit version ${version} at level ${level}`);
  }
  if (mask !== undefined && !(Number.isInteger(mask) && mask >= 0 && mask <= 7)) throw new RangeError(`no mask ${mask}`);

  const layout = template(version);
  const unmasked = placeData(finalCodewords(dataCodewords(bytes, version, level), version, level), layout);
  let best;
  for (let candidate = 0; candidate < 8; candidate++) {
    if (mask !== undefined && candidate !== mask) continue;
    const modules = applyMask(unmasked, layout, candidate, level);
    const score = mask === undefined ? penalty(modules, layout.size) : 0;
    if (!best || score < best.score) best = { mask: candidate, modules, score };
  }

  const { size } = layout;
  const rows = [];
  for (let row = 0; row < size; row++) {
    rows.push(Array.from(best.modules.subarray(row * size, (row + 1) * size), (value) => value === 1));
  }
  return { version, size, mask: best.mask, errorCorrection: level, modules: rows };
}

const svgNamespace = 'http://www.w3.org/2000/svg';

/**
 * Draws a matrix from encodeQR as an SVG element made with `document`: a light square with a
 * `margin`-module quiet zone (the standard asks for at least 4) and one path for the dark
 * modules, one subpath per horizontal run. One user unit is one module; `scale` sets the
 * rendered pixels per module.
 */
export function renderQR(matrix, document, { scale = 6, margin = 4, label = 'QR code' } = {}) {
  const { size, modules } = matrix;
  if (!(scale > 0)) throw new RangeError('scale must be positive');
  if (!(Number.isInteger(margin) && margin >= 0)) throw new RangeError('margin must be a whole number of modules');
  const extent = size + 2 * margin;

  const svg = document.createElementNS(svgNamespace, 'svg');
  svg.setAttribute('viewBox', `0 0 ${extent} ${extent}`);
  svg.setAttribute('width', String(extent * scale));
  svg.setAttribute('height', String(extent * scale));
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  // Anti-aliasing would leave faint seams between adjacent runs and blur module edges.
  svg.setAttribute('shape-rendering', 'crispEdges');

  const background = document.createElementNS(svgNamespace, 'rect');
  background.setAttribute('width', String(extent));
  background.setAttribute('height', String(extent));
  background.setAttribute('fill', '#fff');
  svg.appendChild(background);

  let d = '';
  for (let row = 0; row < size; row++) {
    for (let column = 0; column < size;) {
      if (!modules[row][column]) { column++; continue; }
      let end = column;
      while (end < size && modules[row][end]) end++;
      const length = end - column;
      d += `M${column + margin} ${row + margin}h${length}v1h-${length}z`;
      column = end;
    }
  }
  const path = document.createElementNS(svgNamespace, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000');
  svg.appendChild(path);
  return svg;
}
