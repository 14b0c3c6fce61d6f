// An embedded Tomcat that reads multipart uploads as a servlet does (Part.getSubmittedFileName,
// getParameter for text parts) and answers with what it read, one value a line, each as
// hex UTF-8 so nothing is lost on the way back. Used by tests/test_real_parsers.py; binds 127.0.0.1.
import jakarta.servlet.MultipartConfigElement;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import jakarta.servlet.http.Part;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import org.apache.catalina.Context;
import org.apache.catalina.Wrapper;
import org.apache.catalina.startup.Tomcat;

public class Echo {
    public static void main(String[] args) throws Exception {
        Tomcat tomcat = new Tomcat();
        tomcat.setBaseDir(args[0]);
        tomcat.setPort(0);
        tomcat.getConnector().setProperty("address", "127.0.0.1");
        Context context = tomcat.addContext("", null);
        Wrapper wrapper = Tomcat.addServlet(context, "echo", new HttpServlet() {
            @Override
            protected void doPost(HttpServletRequest request, HttpServletResponse response) throws IOException {
                StringBuilder out = new StringBuilder();
                try {
                    for (Part part : request.getParts()) {
                        String file = part.getSubmittedFileName();
                        String value = file != null ? file : request.getParameter(part.getName());
                        out.append(file != null ? "file " : "field ").append(part.getName()).append(' ')
                           .append(HexFormat.of().formatHex(value.getBytes(StandardCharsets.UTF_8))).append('\n');
                    }
                } catch (Exception error) {
                    response.setStatus(400);
                    out.append("error ").append(error).append('\n');
                }
                response.setContentType("text/plain");
                response.getOutputStream().write(out.toString().getBytes(StandardCharsets.UTF_8));
            }
        });
        wrapper.setMultipartConfigElement(new MultipartConfigElement(""));
        context.addServletMappingDecoded("/", "echo");
        tomcat.start();
        System.out.println(tomcat.getConnector().getLocalPort());
        System.out.flush();
        tomcat.getServer().await();
    }
}
