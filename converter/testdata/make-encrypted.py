#!/usr/bin/python3
"""Writes password-protected copies of documents with LibreOffice itself (through UNO), for the
converter's password tests. Needs Debian's python3-uno (run with /usr/bin/python3).

    make-encrypted.py PASSWORD IN:FILTER:OUT [IN:FILTER:OUT ...]

FILTER is a LibreOffice export filter: "MS Word 97" (.doc), "MS Excel 97" (.xls), "impress8"
(.odp), "MS Word 2007 XML" (.docx). A headless soffice with a private profile serves the run.
"""
import os
import subprocess
import sys
import tempfile
import time

import uno
from com.sun.star.beans import PropertyValue


def prop(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def main():
    password, jobs = sys.argv[1], [a.split(":", 2) for a in sys.argv[2:]]
    work = tempfile.mkdtemp(prefix="kx-encrypt-")
    pipe = "kxencrypt%d" % os.getpid()
    soffice = subprocess.Popen(
        ["soffice", "--headless", "--invisible", "--norestore", "--nologo", "--nodefault",
         "-env:UserInstallation=file://" + work, "--accept=pipe,name=%s;urp;" % pipe],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
        for _ in range(600):
            try:
                ctx = resolver.resolve("uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe)
                break
            except Exception:
                time.sleep(0.1)
        else:
            sys.exit("soffice did not accept connections")
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        for src, flt, out in jobs:
            doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(os.path.abspath(src)), "_blank", 0,
                                               (prop("Hidden", True),))
            doc.storeToURL(uno.systemPathToFileUrl(os.path.abspath(out)),
                           (prop("FilterName", flt), prop("Password", password), prop("Overwrite", True)))
            doc.close(True)
    finally:
        # soffice is a launcher: end its whole session (soffice.bin outlives a killed launcher).
        os.killpg(soffice.pid, 9)
        soffice.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
