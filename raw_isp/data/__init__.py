"""Raw frames as Hugging Face ``datasets``: storage, loading, sources and splits.

    arrow     uint16 frames and masks as Array2D columns, the ``raw_isp`` format, batch loading
    builder   the builder base class both datasets share, and its helpers
    layout    a folder, zip or zip of zips as one tree, searched for a dataset's layout
    archive   safe zip extraction with size and compression limits
    download  verified downloads (size, MD5 / SHA-256) with timeouts and clear errors; manifests
    zenodo    the Zenodo record through its REST API, and the choice of a configuration's files
    splits    leak-free, stratified train / validation / test splits and k folds
    export    a dataset repository folder for the Hub: Parquet shards and the filled card
"""
