# shellcheck shell=bash
# Certificates and kubeconfigs, made with openssl in $pki: a CA, the apiserver's serving
# certificate, the service-account key pair, and one client certificate per component (admin in
# system:masters, the kubelet as system:node:<name>, controller-manager, scheduler, kube-proxy,
# CoreDNS). Kept across down/up: only `rm -rf $KX_HOME/pki` makes new ones.

cert() { # cert NAME CN ORG [SANS]: a client or serving cert signed by the cluster CA
  local name=$1 cn=$2 org=$3 sans=${4:-}
  [ -s "$pki/$name.crt" ] && return
  local subj="/CN=$cn"
  [ -n "$org" ] && subj="/O=$org$subj"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$sans" ]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$sans"; else echo "extendedKeyUsage=clientAuth"; fi
  } > "$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
    -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null || die "signing the $name certificate failed"
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

kubeconfig() { # kubeconfig FILE CERTNAME
  put "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kubexport-local
  cluster:
    certificate-authority: $pki/ca.crt
    server: https://$NODE_IP:$API_PORT
users:
- name: $2
  user:
    client-certificate: $pki/$2.crt
    client-key: $pki/$2.key
contexts:
- name: kubexport-local
  context: {cluster: kubexport-local, user: $2}
current-context: kubexport-local
EOF
}

make_pki() {
  mkdir -p "$pki"
  chmod 700 "$pki"
  if [ ! -s "$pki/ca.crt" ]; then
    log "creating certificates in $pki"
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -subj "/CN=kubexport-local-ca" \
      -days 3650 -out "$pki/ca.crt" 2>/dev/null || die "creating the CA failed"
  fi
  [ -s "$pki/sa.key" ] || { openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null && openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null; }
  cert apiserver kube-apiserver "" "IP:$NODE_IP,IP:127.0.0.1,IP:$API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert admin kubernetes-admin system:masters
  cert kubelet "system:node:$NODE_NAME" system:nodes "IP:$NODE_IP,DNS:$NODE_NAME"
  cert controller-manager system:kube-controller-manager ""
  cert scheduler system:kube-scheduler ""
  cert kube-proxy system:kube-proxy ""
  cert coredns kubexport:coredns ""
  kubeconfig "$KUBECONFIG_PATH" admin
  local c
  for c in kubelet controller-manager scheduler kube-proxy coredns; do kubeconfig "$KX_HOME/$c.kubeconfig" "$c"; done
}
