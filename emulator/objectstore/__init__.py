"""Where S3 objects live (MinIO run by the emulator, an external S3, or moto's memory) and how
S3 requests on the edge port reach them (a re-signing, streaming proxy)."""

from emulator.objectstore.minio import StoreEndpoint, StoreUnavailable
from emulator.objectstore.signing import is_s3_request
from emulator.objectstore.stores import ObjectStore, open_store

__all__ = ["ObjectStore", "StoreEndpoint", "StoreUnavailable", "is_s3_request", "open_store"]
