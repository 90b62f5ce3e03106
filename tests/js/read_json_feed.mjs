// Reads JSON Feeds with feedsmith (an independent parser from npm) and prints each as one
// line of JSON: what it parsed, or {"error": message}.
//   node read_json_feed.mjs --files   < paths, one a line
//   node read_json_feed.mjs --url URL (fetched over HTTP, as a reader would)
import { readFileSync } from "node:fs";
import { parseJsonFeed } from "feedsmith";

function read(text) {
  try {
    return parseJsonFeed(text);
  } catch (error) {
    return { error: String(error && error.message ? error.message : error) };
  }
}

const [mode, arg] = process.argv.slice(2);
if (mode === "--files") {
  const paths = readFileSync(0, "utf8").split("\n").filter((line) => line.length > 0);
  const out = paths.map((path) => JSON.stringify(read(readFileSync(path, "utf8"))));
  process.stdout.write(out.map((line) => line + "\n").join(""));
} else if (mode === "--url") {
  const response = await fetch(arg, { headers: { "Accept-Encoding": "gzip" } });
  const body = await response.text();
  const feed = read(body);
  feed._http = {
    status: response.status,
    content_type: response.headers.get("content-type"),
    etag: response.headers.get("etag"),
  };
  process.stdout.write(JSON.stringify(feed) + "\n");
} else {
  process.stderr.write("usage: read_json_feed.mjs --files | --url URL\n");
  process.exit(2);
}
