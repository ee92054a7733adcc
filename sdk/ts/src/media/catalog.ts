/**
 * MSF catalog (draft-ietf-moq-msf) with the CMSF extension (packaging "cmaf", initData =
 * base64 CMAF header). The same JSON is carried on the `.catalog` track (live) and served as
 * `catalog.json` (VOD).
 */
import { StreamsError } from "../errors.js";

/** Track name of the catalog in ClutchCall namespaces (the recipes' name; MSF's own is "catalog"). */
export const CATALOG_TRACK = ".catalog";
/** MSF version string we write (MSF: "draft-XX"). Parsers accept any string or number. */
export const MSF_VERSION = "draft-01";

export interface CatalogTrack {
  readonly name: string;
  readonly namespace?: string;
  /** "cmaf" for media (CMSF); other MSF values are kept but not played. */
  readonly packaging: string;
  readonly isLive: boolean;
  readonly role?: string;
  readonly codec?: string;
  readonly mimeType?: string;
  readonly width?: number;
  readonly height?: number;
  readonly framerate?: number;
  readonly timescale?: number;
  /** Maximum bitrate, bits per second. */
  readonly bitrate?: number;
  readonly samplerate?: number;
  readonly channelConfig?: string;
  readonly altGroup?: number;
  readonly renderGroup?: number;
  /** base64 CMAF header (ftyp+moov). */
  readonly initData?: string;
  readonly maxGrpSapStartingType?: number;
  readonly maxObjSapStartingType?: number;
  readonly maxGroupDuration?: number;
  readonly trackDuration?: number;
  readonly targetLatency?: number;
  readonly label?: string;
  readonly lang?: string;
  /** VOD (`catalog.json`): number of media segments. */
  readonly segmentCount?: number;
  /** VOD: decode time of segment 0, in `timescale` units. */
  readonly segmentStartTime?: number;
  /** VOD: duration of every segment, in `timescale` units. */
  readonly segmentDurations?: readonly number[];
}

export interface Catalog {
  readonly version: string | number;
  readonly generatedAt?: number;
  readonly isComplete?: boolean;
  readonly tracks: readonly CatalogTrack[];
}

export function base64Encode(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

export function base64Decode(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function encodeCatalog(c: Catalog): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(c));
}

function bad(msg: string): never {
  throw new StreamsError("media_error", `invalid catalog: ${msg}`);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parse and validate a catalog document (bytes or JSON text). Unknown fields are ignored. */
export function parseCatalog(input: Uint8Array | string): Catalog {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof input === "string" ? input : new TextDecoder().decode(input));
  } catch {
    bad("not JSON");
  }
  if (!isObj(raw)) bad("root is not an object");
  if ("deltaUpdate" in raw) bad("delta updates are not supported as a first catalog");
  const version = raw["version"];
  if (typeof version !== "string" && typeof version !== "number") bad("missing version");
  const tracksRaw = raw["tracks"];
  if (!Array.isArray(tracksRaw)) bad("missing tracks array");
  const tracks: CatalogTrack[] = tracksRaw.map((t: unknown, i: number) => {
    if (!isObj(t)) bad(`track ${i} is not an object`);
    const name = t["name"];
    const packaging = t["packaging"];
    if (typeof name !== "string" || name.length === 0) bad(`track ${i} has no name`);
    if (typeof packaging !== "string") bad(`track ${name} has no packaging`);
    const str = (k: string) => (typeof t[k] === "string" ? (t[k] as string) : undefined);
    const num = (k: string) => (typeof t[k] === "number" && Number.isFinite(t[k]) ? (t[k] as number) : undefined);
    const out: Record<string, unknown> = { name, packaging, isLive: t["isLive"] === true };
    for (const k of ["namespace", "role", "codec", "mimeType", "channelConfig", "initData", "label", "lang"]) {
      const v = str(k);
      if (v !== undefined) out[k] = v;
    }
    for (const k of ["width", "height", "framerate", "timescale", "bitrate", "samplerate", "altGroup", "renderGroup", "maxGrpSapStartingType", "maxObjSapStartingType", "maxGroupDuration", "trackDuration", "targetLatency"]) {
      const v = num(k);
      if (v !== undefined) out[k] = v;
    }
    for (const k of ["segmentCount", "segmentStartTime"]) {
      const v = num(k);
      if (v !== undefined) out[k] = v;
    }
    const durations = t["segmentDurations"];
    if (Array.isArray(durations) && durations.every((d) => typeof d === "number" && Number.isFinite(d) && d >= 0)) {
      out["segmentDurations"] = durations as number[];
    }
    return out as unknown as CatalogTrack;
  });
  const c: { -readonly [K in keyof Catalog]: Catalog[K] } = { version, tracks };
  if (typeof raw["generatedAt"] === "number") c.generatedAt = raw["generatedAt"];
  if (raw["isComplete"] === true) c.isComplete = true;
  return c;
}

/** Role of a track: `role`, else guessed from the codec. */
export function trackRole(t: CatalogTrack): "video" | "audio" | "other" {
  if (t.role === "video" || t.role === "audio") return t.role;
  const c = t.codec ?? "";
  if (/^(avc[13]|hvc1|hev1|vp0[89]|av01)/.test(c)) return "video";
  if (/^(mp4a|opus|Opus|flac|ac-3|ec-3)/.test(c)) return "audio";
  return "other";
}

/** MSE type string, e.g. `video/mp4; codecs="avc1.42e01f"`. */
export function mseType(t: CatalogTrack): string {
  const role = trackRole(t);
  const codec = t.codec === "Opus" ? "opus" : t.codec;
  return `${role === "audio" ? "audio" : "video"}/mp4; codecs="${codec ?? ""}"`;
}

export interface Renditions {
  /** Video renditions of the chosen altGroup, lowest bitrate first. */
  readonly video: readonly CatalogTrack[];
  /** Audio renditions of the chosen altGroup, lowest bitrate first. */
  readonly audio: readonly CatalogTrack[];
}

/**
 * Pick playable CMAF renditions: the first render group that has video (else audio); within
 * each role the altGroup of the first track; sorted by bitrate. `canPlay` filters by codec.
 */
export function pickRenditions(c: Catalog, canPlay: (t: CatalogTrack) => boolean = () => true): Renditions {
  const media = c.tracks.filter((t) => t.packaging === "cmaf" && trackRole(t) !== "other" && canPlay(t));
  const first = media.find((t) => trackRole(t) === "video") ?? media[0];
  const rg = first?.renderGroup;
  const inRg = media.filter((t) => rg === undefined || t.renderGroup === undefined || t.renderGroup === rg);
  const pick = (role: "video" | "audio") => {
    const ofRole = inRg.filter((t) => trackRole(t) === role);
    const head = ofRole[0];
    if (head === undefined) return [];
    const ag = head.altGroup;
    const group = ag === undefined ? [head] : ofRole.filter((t) => t.altGroup === ag);
    return [...group].sort((a, b) => (a.bitrate ?? 0) - (b.bitrate ?? 0));
  };
  return { video: pick("video"), audio: pick("audio") };
}
