extension CatalogSchema {
    /// `signed_download_url` is kept fresh by the archiver (`SignedURLCatalog`): these partial indexes find the rows
    /// whose URL is missing or about to expire without reading the table. Staged copies are few at any time (they
    /// are archived within minutes); archived rows with a URL are only those in a class readable without a restore.
    static let signedURLRefresh = Migration(version: 17, name: "signed download URL refresh", statements: [
        "CREATE INDEX objectstoragefiles_staging_url_idx ON ObjectStorageFiles (id) WHERE storage = 'staging' AND deleted_at IS NULL",
        """
        CREATE INDEX objectstoragefiles_archive_url_idx ON ObjectStorageFiles (signed_download_url_expires_at)
            WHERE storage = 'archive' AND signed_download_url IS NOT NULL
        """,
    ])
}
