"""Every benchmark's targets, said once: the scripts print PASS/FAIL against these names, the
table at the top of benchmarks/README.md states them, and tests/test_docs.py checks that it
states exactly these. Targets are reported, never enforced."""

CONVERT_TIME_RATIO = 2.0  # bench_convert: feedfix / floor wall time (medians) at CONVERT_ITEMS
CONVERT_ITEMS = 1000
CONVERT_RSS_RATIO = 9.0  # bench_convert: feedfix peak RSS / input size, at most
SERVE_200 = 0.85  # bench_serve: feedfix 200 / nginx 200, at least
SERVE_304 = 2.0  # bench_serve: feedfix 304 / nginx 200, at least
SERVE_FORMAT_SHARE = 0.95  # bench_serve: RSS's (JSON's) 200 ratio / the Atom's, at least
RENDER_RATIO = 1.0  # bench_formats: RSS (JSON) render time / Atom render time, at most
IMAGES_200 = 0.8  # bench_images: cached image 200 / nginx 200, at least
IMAGES_304 = 2.0  # bench_images: 304 / nginx 200, at least
IMAGES_COLD_MS = 5.0  # bench_images: milliseconds a cold fetch adds over nginx's own, below
FIX_POSTS_PER_S = 2000.0  # bench_fix_posts: posts per second, dry run and --write, at least
SAVE_IMAGES_RSS_MB = 100.0  # bench_fix_posts_images: fix-posts' resident memory, at most
POLL_304_SHARE = 0.05  # bench_poll: a 304 round's CPU / a changed round's, below
POLL_RSS_MB = 80.0  # bench_poll: resident memory with 100 feeds x 50 entries, at most
LOAD_DRIFT = 0.10  # bench_load: resident memory drift under load, within
ARCHIVE_SERVING = 0.9  # bench_archive: serving rate while archiving / paused, at least
ARCHIVE_RSS_MB = 10.0  # bench_archive: RSS with 10,000 archived images over none, within
