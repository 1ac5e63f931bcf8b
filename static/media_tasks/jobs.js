/* An upload's two jobs, and the upload's state derived from them as the server derives it:
 * failed if one failed, done when both succeeded, else processing or queued. */

// Job kinds by the named channel they run on (DESIGN.md: thumbnails, compute).
export const KIND_BY_CHANNEL = { thumbnails: "thumbnails", compute: "analysis" };
export const KINDS = ["thumbnails", "analysis"];
// Events can arrive out of order with API reads; a job never moves back down this ladder.
const RANK = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };

/** What is known of a job once `job` (an event, or the job in the upload's JSON) is added to
 * `current`; null if `job` is older news than `current`. */
export function mergeJob(current, job) {
  const status = job.status in RANK ? job.status : "queued";
  if (current && RANK[status] < RANK[current.status]) return null;
  const sameStatus = current && current.status === status;
  return {
    status,
    progress: sameStatus ? Math.max(current.progress, job.progress || 0) : job.progress || 0,
    message: job.message || "",
    error: job.error || (current && current.error) || "",
  };
}

/** The upload's {status, progress, error} from its jobs by kind; from `data` (the upload's
 * JSON, or null) while no job is known. */
export function deriveState(jobsByKind, data) {
  const jobs = KINDS.map((kind) => jobsByKind[kind]).filter(Boolean);
  if (!jobs.length) {
    const known = data || {};
    return { status: known.status || "queued", progress: known.progress || 0, error: known.error || "" };
  }
  const failed = jobs.find((j) => j.status === "failed" || j.status === "cancelled");
  if (failed) {
    const reason = failed.status === "cancelled" ? "processing was cancelled" : failed.error;
    return { status: "failed", progress: 100, error: reason || (data && data.error) || "processing failed" };
  }
  const progress = KINDS.reduce((sum, kind) => {
    const job = jobsByKind[kind];
    return sum + (!job ? 0 : job.status === "succeeded" ? 100 : job.progress);
  }, 0) / KINDS.length;
  if (jobs.length === KINDS.length && jobs.every((j) => j.status === "succeeded")) {
    return { status: "done", progress: 100, error: "" };
  }
  const started = jobs.some((j) => j.status !== "queued");
  return { status: started ? "processing" : "queued", progress, error: "" };
}

/** What the last running job says it is doing, or "". */
export function runningMessage(jobsByKind) {
  const messages = KINDS.map((k) => jobsByKind[k]).filter((j) => j && j.status === "running" && j.message);
  return messages.length ? messages[messages.length - 1].message : "";
}
