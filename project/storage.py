"""Static files in production: content-hashed names, in the pages' ES modules too."""

from django.contrib.staticfiles.storage import ManifestStaticFilesStorage


class ModuleManifestStaticFilesStorage(ManifestStaticFilesStorage):
    """ManifestStaticFilesStorage that also rewrites a module's relative imports
    (`import { el } from "../site/dom.js";`) to the hashed names of the files imported: a
    page that loads main.<hash>.js must get the api.<hash>.js of the same release, never a
    cached api.js of another. Imports must end with a semicolon to be found.

    A module's hash covers its imports' hashed names, so hashes settle from the leaves up, a
    pass per level of imports in the worst order of files: the upload page's chain,
    main.js > socket.js > gallery.js > cards.js > queue.js > api.js > status.js > dom.js, is
    deeper than Django's five passes are sure to cover."""

    support_js_module_import_aggregation = True
    max_post_process_passes = 12
