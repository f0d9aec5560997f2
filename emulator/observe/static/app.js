// sagemaker-emulator dashboard. Plain JavaScript, no dependencies, same-origin relative URLs
// only (the page is /_smemu/, the API /_smemu/api/...). Every value from the emulator is put
// into the page as text (textContent), never as HTML.
"use strict";

const REFRESH_MS = 2000;
const LOG_POLL_MS = 1000;
let pageTimers = [];
let pageToken = 0;

// -- small DOM helpers ---------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  return node;
}

function statusClass(status) {
  if (["Completed", "InService"].includes(status)) return "s-ok";
  if (["Failed", "UpdateRollbackFailed", "OutOfService"].includes(status)) return "s-bad";
  if (["Stopped", "Stopping", "Deleting", "Unhealthy", "Replacing"].includes(status)) return "s-warn";
  return "s-run";
}

function badge(status) {
  return el("span", { class: "badge " + statusClass(status), "data-status": status, text: status || "?" });
}

function when(epoch) {
  if (epoch === undefined || epoch === null) return "";
  return new Date(Number(epoch) * 1000).toLocaleString();
}

function clock(epoch) {
  return new Date(Number(epoch) * 1000).toLocaleTimeString();
}

function duration(start, end) {
  if (!start) return "";
  const seconds = Math.max(0, Math.round((end ? Number(end) : Date.now() / 1000) - Number(start)));
  if (seconds < 60) return seconds + " s";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min " + (seconds % 60) + " s";
  return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
}

function link(kind, name) {
  return el("a", { href: "#/r/" + encodeURIComponent(kind) + "/" + encodeURIComponent(name), text: name });
}

function facts(pairs) {
  const list = el("dl", { class: "facts" });
  for (const [term, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    list.append(el("dt", { text: term }), el("dd", {}, value instanceof Node ? value : String(value)));
  }
  return list;
}

function table(headers, rows, id) {
  const head = el("tr", {}, headers.map((h) => el("th", { text: h })));
  return el("table", { id: id }, el("thead", {}, head), el("tbody", {}, rows));
}

async function api(path) {
  const response = await fetch("api/" + path, { headers: { Accept: "application/json" }, cache: "no-store" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.message || "HTTP " + response.status);
    error.status = response.status;
    throw error;
  }
  return body;
}

function connection(ok, message) {
  const node = document.getElementById("connection");
  node.textContent = ok ? "live" : "not connected: " + message;
  node.className = "connection" + (ok ? "" : " down");
}

// -- pages ---------------------------------------------------------------------------------------

function every(ms, work) {
  const token = pageToken;
  const run = async () => {
    if (token !== pageToken) return;
    try {
      const again = await work();
      connection(true);
      if (again === false) return;
    } catch (error) {
      connection(false, error.message);
    }
    if (token === pageToken) pageTimers.push(setTimeout(run, ms));
  };
  run();
}

function route() {
  pageToken += 1;
  pageTimers.forEach(clearTimeout);
  pageTimers = [];
  const view = document.getElementById("view");
  const match = /^#\/r\/([^/]+)\/([^/]+)$/.exec(location.hash);
  if (match) {
    resourcePage(view, decodeURIComponent(match[1]), decodeURIComponent(match[2]));
  } else {
    overviewPage(view);
  }
}

function overviewPage(view) {
  view.replaceChildren(el("h1", { text: "What is running" }), el("div", { id: "overview" }));
  every(REFRESH_MS, async () => {
    const status = await api("status");
    const info = status.Emulator;
    document.getElementById("emulator-info").textContent =
      "v" + info.Version + " · " + info.EndpointUrl + " · home " + info.Home;
    const jobRows = status.Jobs.map((job) =>
      el("tr", { "data-kind": job.Kind, "data-name": job.Name },
        el("td", { text: job.Kind }),
        el("td", {}, link(job.Kind, job.Name)),
        el("td", {}, badge(job.Status)),
        el("td", { text: job.SecondaryStatus || "" }),
        el("td", { text: job.Instances || "" }),
        el("td", { text: when(job.CreationTime) }),
        el("td", { text: duration(job.StartTime || job.CreationTime, job.EndTime) })));
    const endpointRows = status.Endpoints.map((endpoint) => {
      const fleet = endpoint.Fleet && endpoint.Fleet.Active;
      const variants = fleet ? fleet.Variants.map((v) =>
        v.VariantName + " (" + v.Instances.length + "/" + v.DesiredInstanceCount + ")").join(", ") : "";
      const calls = Object.values(endpoint.Invocations || {}).reduce((sum, v) => sum + v.Invocations, 0);
      return el("tr", { "data-kind": endpoint.Kind, "data-name": endpoint.Name },
        el("td", {}, link(endpoint.Kind, endpoint.Name)),
        el("td", {}, badge(endpoint.Status)),
        el("td", { text: variants }),
        el("td", { text: String(calls) }),
        el("td", { text: when(endpoint.CreationTime) }));
    });
    document.getElementById("overview").replaceChildren(
      el("h2", { text: "Jobs" }),
      jobRows.length ? table(["kind", "name", "status", "secondary status", "instances", "created", "duration"],
        jobRows, "jobs") : el("p", { class: "empty", id: "jobs", text: "No jobs yet." }),
      el("h2", { text: "Endpoints" }),
      endpointRows.length ? table(["name", "status", "variants (instances)", "invocations", "created"],
        endpointRows, "endpoints") : el("p", { class: "empty", id: "endpoints", text: "No endpoints." }));
  });
}

function resourcePage(view, kind, name) {
  const summary = el("section", { id: "summary" });
  const details = el("section", { id: "details" });
  const charts = el("div", { class: "charts", id: "charts" });
  const logs = el("pre", { class: "logs", id: "logs" });
  view.replaceChildren(
    el("p", {}, el("a", { href: "#/", text: "← everything" })),
    summary, details,
    el("h2", { text: "Metrics" }), charts,
    el("h2", { text: "Logs" }), logs);
  let terminal = false;
  every(REFRESH_MS, async () => {
    let resource;
    try {
      resource = await api("resources/" + encodeURIComponent(kind) + "/" + encodeURIComponent(name));
    } catch (error) {
      if (error.status === 404) {
        summary.replaceChildren(el("h1", { text: name }), el("p", { class: "empty", text: error.message }));
        return false;
      }
      throw error;
    }
    terminal = resource.Terminal;
    renderSummary(summary, resource);
    details.replaceChildren(...(kind === "endpoint" ? endpointDetails(resource) : jobDetails(resource)));
    return !terminal || kind === "endpoint";
  });
  followLogs(logs, kind, name);
  every(REFRESH_MS, async () => {
    const metrics = await api("resources/" + encodeURIComponent(kind) + "/" + encodeURIComponent(name) + "/metrics");
    renderCharts(charts, metrics.Series);
    return !terminal;
  });
}

function renderSummary(node, resource) {
  node.replaceChildren(el("div", {},
    el("h1", {}, resource.Label + " ", el("span", { class: "mono", text: resource.Name }), " ", badge(resource.Status)),
    resource.FailureReason ? el("div", { class: "reason", id: "failure-reason", text: resource.FailureReason }) : null,
    facts([
      ["secondary status", resource.SecondaryStatus],
      ["instances", resource.Instances],
      ["created", when(resource.CreationTime)],
      ["started", when(resource.StartTime)],
      ["ended", when(resource.EndTime)],
      ["duration", resource.Kind === "endpoint" ? "" : duration(resource.StartTime || resource.CreationTime,
        resource.EndTime)],
      ["ARN", resource.Arn],
    ])));
}

function jobDetails(resource) {
  const parts = [];
  if (resource.Timeline && resource.Timeline.length) {
    parts.push(el("h2", { text: "Timeline" }), el("ol", { class: "timeline", id: "timeline" },
      resource.Timeline.map((step) => el("li", { class: step.EndTime ? "done" : "" },
        el("strong", { text: step.Status }), " ",
        el("span", { class: "muted", text: clock(step.StartTime) + (step.EndTime ? " → " + clock(step.EndTime) +
          " (" + duration(step.StartTime, step.EndTime) + ")" : " (now)") }),
        step.StatusMessage ? el("div", { class: "muted", text: step.StatusMessage }) : null))));
  }
  if (resource.Children && resource.Children.length) {
    parts.push(el("h2", { text: "Training jobs" }), table(["name", "status", "created"],
      resource.Children.map((child) => el("tr", {}, el("td", {}, link(child.Kind, child.Name)),
        el("td", {}, badge(child.Status)), el("td", { text: when(child.CreationTime) }))), "children"));
  }
  const final = resource.Describe.FinalMetricDataList;
  if (final && final.length) {
    parts.push(el("h2", { text: "Final metrics" }), table(["metric", "value"],
      final.map((m) => el("tr", {}, el("td", { text: m.MetricName }), el("td", { text: String(m.Value) }))),
      "final-metrics"));
  }
  return parts;
}

function endpointDetails(resource) {
  const parts = [];
  const fleet = resource.Fleet && resource.Fleet.Active;
  const calls = resource.Invocations || {};
  if (fleet) {
    parts.push(el("h2", { text: "Variants (config " + fleet.EndpointConfigName + ")" }));
    const rows = [];
    for (const variant of fleet.Variants) {
      const stats = calls[variant.VariantName] || {};
      rows.push(el("tr", { "data-variant": variant.VariantName },
        el("td", { text: variant.VariantName }),
        el("td", { text: variant.Serverless ? "serverless" : variant.InstanceType }),
        el("td", { text: String(variant.Weight) }),
        el("td", {}, variant.Instances.map((instance) => el("div", { class: "instance",
          "data-instance": instance.InstanceId },
          el("span", { class: "mono", text: instance.InstanceId }), " ", badge(instance.Health),
          instance.Containers.map((c) => el("span", { class: "muted mono",
            text: " " + c.Hostname + " " + (c.Address || "") + " (" + c.ContainerId + ")" })))),
          variant.Instances.length ? null : el("span", { class: "empty", text: "none running" })),
        el("td", { class: "invocations", text: String(stats.Invocations || 0) }),
        el("td", { text: String((stats.Invocation4XXErrors || 0) + (stats.Invocation5XXErrors || 0)) }),
        el("td", { class: "latency", text: stats.ModelLatencyMeanMs === null || stats.ModelLatencyMeanMs ===
          undefined ? "" : stats.ModelLatencyMeanMs + " ms" })));
    }
    parts.push(table(["variant", "instance type", "weight", "instances", "invocations", "errors",
      "mean model latency"], rows, "variants"));
  }
  const models = resource.Models;
  if (models && models.Variants.some((v) => v.MultiModel)) {
    parts.push(el("h2", { text: "Loaded models" }));
    const rows = [];
    for (const variant of models.Variants.filter((v) => v.MultiModel)) {
      for (const instance of variant.Instances) {
        for (const model of instance.Models || []) {
          rows.push(el("tr", {}, el("td", { text: variant.VariantName }),
            el("td", { class: "mono", text: instance.InstanceId }), el("td", { class: "mono", text: model.TargetModel }),
            el("td", { text: model.State }), el("td", { text: String(model.Hits) }),
            el("td", { text: String(model.SizeBytes) })));
        }
      }
    }
    parts.push(rows.length ? table(["variant", "instance", "target model", "state", "hits", "bytes"], rows, "models")
      : el("p", { class: "empty", text: "No model loaded yet." }));
  }
  const events = (resource.Fleet && resource.Fleet.Events) || [];
  parts.push(el("h2", { text: "Events" }), events.length ? el("ul", { class: "events", id: "events" },
    events.slice().reverse().map((e) => el("li", {}, el("span", { class: "muted", text: when(e.Time) + " " }),
      e.Message))) : el("p", { class: "empty", id: "events", text: "No health events." }));
  return parts;
}

// -- logs: follow with the cursor until the resource is terminal --------------------------------

function followLogs(node, kind, name) {
  let cursor = "";
  let lines = 0;
  let finished = false;
  const base = "resources/" + encodeURIComponent(kind) + "/" + encodeURIComponent(name) + "/logs";
  every(LOG_POLL_MS, async () => {
    const page = await api(base + (cursor ? "?cursor=" + encodeURIComponent(cursor) : ""));
    const atBottom = node.scrollTop + node.clientHeight >= node.scrollHeight - 8;
    for (const event of page.Events) {
      node.append(el("span", { class: "stream", text: clock(event.Timestamp) + " " + event.Stream + " " }),
        event.Message + "\n");
      lines += 1;
    }
    if (atBottom) node.scrollTop = node.scrollHeight;
    cursor = page.Cursor;
    if (finished && page.Events.length === 0) {
      if (lines === 0) node.append(el("span", { class: "empty", text: "No log events." }));
      node.dataset.finished = "true";
      return false;
    }
    finished = page.Terminal && kind !== "endpoint";  // one more read after the final status
    return true;
  });
}

// -- charts: one small SVG line chart per metric series -----------------------------------------

function renderCharts(node, series) {
  if (!series.length) {
    node.replaceChildren(el("p", { class: "empty", text: "No metrics yet." }));
    return;
  }
  node.replaceChildren(...series.map((s) => chart(s)));
}

function chart(series) {
  const width = 360, height = 150, left = 46, right = 10, top = 10, bottom = 22;
  const points = series.Points;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const py = (y) => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);
  const picture = svg("svg", { class: "chart", viewBox: "0 0 " + width + " " + height, width: width,
    height: height, role: "img", "data-metric": series.MetricName, "data-points": String(points.length) });
  picture.append(
    svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }),
    svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
    svg("text", { x: left - 4, y: top + 8, "text-anchor": "end", text: format(y1) }),
    svg("text", { x: left - 4, y: height - bottom, "text-anchor": "end", text: format(y0) }),
    svg("text", { x: left, y: height - 6, text: clock(x0) }),
    svg("text", { x: width - right, y: height - 6, "text-anchor": "end", text: clock(x1) }),
    svg("polyline", { class: "line", points: points.map((p) => px(p[0]).toFixed(1) + "," + py(p[1]).toFixed(1))
      .join(" ") }));
  for (const p of points.slice(-50)) {
    picture.append(svg("circle", { class: "dot", cx: px(p[0]).toFixed(1), cy: py(p[1]).toFixed(1), r: 2 }));
  }
  const last = ys[ys.length - 1];
  return el("figure", { class: "chart" },
    el("figcaption", { text: series.MetricName + (series.Unit && series.Unit !== "None" ? " (" + series.Unit +
      ")" : "") + (series.Label ? " · " + series.Label : "") + " · last " + format(last) }), picture);
}

function format(value) {
  if (Math.abs(value) >= 1000 || (Math.abs(value) < 0.01 && value !== 0)) return Number(value).toPrecision(3);
  return String(Math.round(value * 1000) / 1000);
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", route);
