-- Images: what identifies the cached version of a URL image (ETag, Last-Modified) and when the server last confirmed it.
ALTER TABLE img_cache ADD COLUMN etag TEXT NULL;
ALTER TABLE img_cache ADD COLUMN last_modified TEXT NULL;
ALTER TABLE img_cache ADD COLUMN validated_at TEXT NULL;
